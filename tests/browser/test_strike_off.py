"""An election worker strikes off a voter on a phone: finds them by name, marks them voted on
paper, and sees it stored. At 390 px with JavaScript (axe on each step), and at 320 px
without JavaScript (the page needs none)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.settings import Settings
from ratify.votes.models import Channel, Voter
from tests.browser.test_staff_flow import accessible, heading, record_cookies, sign_in
from tests.browser.test_voting import fits
from tests.conftest import SecretLedger
from tests.votes.support import make_union
from tests.votes.test_casting import open_vote

pytestmark = [pytest.mark.browser]


@dataclass(frozen=True)
class Worker:
    email: str
    vote_page: str


@pytest.fixture
def worker(live_sessions: sessionmaker[Session], live_settings: Settings) -> Worker:
    """A staff member of a union whose ratification vote is open."""
    with live_sessions() as db, db.begin():
        u = make_union(db)
        vote = open_vote(db, u, live_settings.secret_key)
        return Worker(u.staff.email, f"/o/{u.org.slug}/votes/{vote.id}")


def strike_off(page: Page, base: str, worker: Worker, *, width: int, axe: bool) -> None:
    def check(shown: Page) -> None:
        fits(shown, width)
        if axe:
            accessible(shown)

    sign_in(page, base, worker.email)
    expect(heading(page)).to_be_visible()
    page.goto(base + worker.vote_page)
    page.get_by_role("link", name="Strike-off: paper and in-person voters").click()
    expect(heading(page)).to_have_text("Strike-off")
    check(page)
    page.get_by_label("Member number or name").fill("last100")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("status")).to_have_text("6 found.")
    check(page)
    # The same results left open on a second phone (or tab), for later.
    stale = page.context.new_page()
    stale.goto(page.url)
    card = voter_card(page, "Last1002, First1002")
    expect(card).to_contain_text("Not yet voted")
    card.get_by_role("button", name="Mark voted on paper").click()
    card = voter_card(page, "Last1002, First1002")
    expect(card.get_by_role("status")).to_have_text("Done: marked voted on paper.")
    expect(card).to_contain_text("Voted on paper")
    expect(card.get_by_role("button")).to_have_count(0)
    check(page)
    # A second tap on the same voter from the page left open is refused, plainly.
    voter_card(stale, "Last1002, First1002").get_by_role(
        "button", name="Mark voted in person"
    ).click()
    expect(stale.get_by_role("alert")).to_have_text("Member 1002 is already marked voted on paper.")
    expect(voter_card(stale, "Last1002, First1002")).to_contain_text("Voted on paper")
    check(stale)


def voter_card(page: Page, name: str) -> Locator:
    return page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=name))


def _stored(live_sessions: sessionmaker[Session], number: str) -> tuple[bool, Channel | None]:
    with live_sessions() as db:
        voter = db.scalars(select(Voter).where(Voter.member_number == number)).one()
        return voter.has_voted, voter.channel


def test_an_election_worker_strikes_off_a_voter_on_a_phone(
    page: Page,
    live_server: str,
    worker: Worker,
    live_sessions: sessionmaker[Session],
    secret_ledger: SecretLedger,
) -> None:
    strike_off(page, live_server, worker, width=390, axe=True)
    record_cookies(page, secret_ledger)
    assert _stored(live_sessions, "1002") == (True, Channel.PAPER)
    assert _stored(live_sessions, "1003") == (False, None)


@pytest.mark.browser_context_args(java_script_enabled=False, viewport={"width": 320, "height": 640})
def test_the_strike_off_works_at_320_pixels_without_javascript(
    page: Page,
    live_server: str,
    worker: Worker,
    live_sessions: sessionmaker[Session],
    secret_ledger: SecretLedger,
) -> None:
    strike_off(page, live_server, worker, width=320, axe=False)
    record_cookies(page, secret_ledger)
    assert _stored(live_sessions, "1002") == (True, Channel.PAPER)
