"""A member votes on a phone: personal link, second factor, ballot, review, cast, receipt.
At 390 px with JavaScript (axe on every member page), at 320 px without JavaScript, and a
second visit to the same link, which leads to "you have voted"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ratify.settings import Settings
from ratify.votes.models import Ballot, SecondFactor
from tests.browser.test_staff_flow import accessible
from tests.conftest import SecretLedger
from tests.votes.support import make_union
from tests.votes.test_casting import link_of, open_vote, voter

pytestmark = [pytest.mark.browser]


@pytest.fixture
def member_link(
    live_sessions: sessionmaker[Session], live_settings: Settings, secret_ledger: SecretLedger
) -> str:
    """Member 1001's personal link to an open ratification vote (second factor: last 4)."""
    with live_sessions() as db, db.begin():
        u = make_union(db)
        vote = open_vote(db, u, live_settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4)
        link = link_of(live_settings.secret_key, voter(db, vote, "1001"))
    secret_ledger.add(link.rpartition("/")[2])
    return link


def fits(page: Page, width: int) -> None:
    scrolled = page.evaluate("document.documentElement.scrollWidth")
    assert scrolled <= width, f"{page.url} is {scrolled}px wide at {width}px"


def vote_on(page: Page, link: str, *, width: int, axe: bool) -> str:
    def check() -> None:
        fits(page, width)
        if axe:
            accessible(page)

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("2027 contract")
    check()
    page.get_by_label("Last 4 characters of the member number").fill("9999")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("does not match")
    check()
    page.get_by_label("Last 4 characters of the member number").fill("1001")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/v/ballot$"))  # the credential is left behind
    expect(page.get_by_role("group", name="Question in en?")).to_be_visible()
    check()
    page.get_by_role("radio", name="Yes").check()
    page.get_by_role("button", name="Review my vote").click()
    expect(page.get_by_text("You are voting: Yes")).to_be_visible()
    check()
    page.get_by_role("button", name="Submit my vote").click()
    expect(page.get_by_role("heading", name="Your vote was counted")).to_be_visible()
    check()
    receipt = page.locator(".receipt code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", receipt)
    return receipt


def test_a_member_votes_on_a_phone(
    page: Page, member_link: str, live_sessions: sessionmaker[Session], secret_ledger
) -> None:  # type: ignore[no-untyped-def]
    secret_ledger.add(vote_on(page, member_link, width=390, axe=True))
    with live_sessions() as db:
        assert db.scalar(select(func.count()).select_from(Ballot)) == 1
    # The same link later: the second factor again, then "you have voted".
    page.goto(member_link)
    page.get_by_label("Last 4 characters of the member number").fill("1001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="You have voted")).to_be_visible()
    accessible(page)


@pytest.mark.browser_context_args(java_script_enabled=False, viewport={"width": 320, "height": 640})
def test_a_member_votes_at_320_pixels_without_javascript(
    page: Page, member_link: str, live_sessions: sessionmaker[Session], secret_ledger
) -> None:  # type: ignore[no-untyped-def]
    secret_ledger.add(vote_on(page, member_link, width=320, axe=False))
    with live_sessions() as db:
        assert db.scalar(select(func.count()).select_from(Ballot)) == 1
