"""After the close, in Chromium: a member finds their receipt on a phone; two committee
members count and certify on a laptop; the certificate passes axe and its PDF reads back
with the right figures."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pypdfium2
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from ratify.orgs.models import Organization
from ratify.settings import Settings
from ratify.votes import casting
from ratify.votes.models import SecondFactor, Vote
from tests.browser.test_staff_flow import accessible, heading, sign_in
from tests.browser.test_voting import fits, vote_on
from tests.conftest import SecretLedger
from tests.factories import PASSWORD
from tests.votes.support import make_union
from tests.votes.test_casting import link_of, open_vote, voter
from tests.votes.test_published import _close

pytestmark = [pytest.mark.browser]


@dataclass(frozen=True)
class Closed:
    link: str  # member 1001's
    result_page: str
    committee: tuple[str, str]


@pytest.fixture
def voting(
    live_sessions: sessionmaker[Session], live_settings: Settings, secret_ledger: SecretLedger
) -> Closed:
    """An open vote: two technicians already voted Yes; member 1001 will vote in the test."""
    with live_sessions() as db, db.begin():
        u = make_union(db)
        vote = open_vote(db, u, live_settings.secret_key, second_factor=SecondFactor.MEMBER_LAST4)
        for number in ("2001", "2002"):
            casting.cast(db, casting.Seat(voter(db, vote, number).id, 1, vote.id), "yes")
        link = link_of(live_settings.secret_key, voter(db, vote, "1001"))
        closed = Closed(
            link,
            f"/o/{u.org.slug}/votes/{vote.id}/result",
            (u.committee[0].email, u.committee[1].email),
        )
    secret_ledger.add(link.rpartition("/")[2])
    return closed


def _close_now(live_sessions: sessionmaker[Session], closed: Closed) -> None:
    vote_id = closed.result_page.split("/")[4]
    with live_sessions() as db, db.begin():
        _close(db, db.get_one(Vote, uuid.UUID(vote_id)))


def test_a_member_finds_their_receipt_after_the_close(
    page: Page, voting: Closed, live_sessions: sessionmaker[Session], secret_ledger
) -> None:  # type: ignore[no-untyped-def]
    receipt = vote_on(page, voting.link, width=390, axe=False)
    secret_ledger.add(receipt)
    _close_now(live_sessions, voting)
    page.goto(voting.link)
    page.get_by_label("Last 4 characters of the member number").fill("1001")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="You have voted")).to_be_visible()
    page.get_by_role("link", name="Check that your receipt is among those counted").click()
    expect(heading(page)).to_have_text("Receipts counted")
    expect(page.get_by_text("3 in all")).to_be_visible()
    fits(page, 390)
    accessible(page)
    page.get_by_label("Your receipt code").fill(receipt.lower().replace("-", " "))
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".receipts code")).to_have_text([receipt])
    accessible(page)


@pytest.mark.browser_context_args(viewport={"width": 1280, "height": 900})
def test_two_committee_members_count_and_certify(
    page: Page, voting: Closed, live_sessions: sessionmaker[Session], base_url: str
) -> None:  # type: ignore[no-untyped-def]
    _close_now(live_sessions, voting)
    first, second = voting.committee
    sign_in(page, base_url, first)
    expect(heading(page)).to_be_visible()
    page.goto(base_url + voting.result_page)
    expect(page.get_by_text("The votes are not counted yet.")).to_be_visible()
    accessible(page)
    page.get_by_role("button", name="Count the votes and fix the result").click()
    expect(page.get_by_text("Ratified.", exact=True)).to_be_visible()
    accessible(page)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign and certify").click()
    expect(page.get_by_text("Signatures: 1 of the 2 needed.")).to_be_visible()
    page.context.clear_cookies()
    sign_in(page, base_url, second)
    expect(heading(page)).to_be_visible()
    page.goto(base_url + voting.result_page)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Sign and certify").click()
    expect(page.get_by_text("Signatures: 2 of the 2 needed.")).to_be_visible()
    page.get_by_role("link", name="The certificate").click()
    expect(heading(page)).to_have_text("Certificate of the result")
    accessible(page)
    pdf = page.request.get(page.url + ".pdf")
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(pdf.body())
    text = "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    assert "Ratified." in text and "2 of 2 votes cast" in text
    # Published, the certified result is a public page, accessible too.
    with live_sessions() as db, db.begin():
        vote = db.get_one(Vote, uuid.UUID(voting.result_page.split("/")[4]))
        org = db.get_one(Organization, vote.organization_id)
        org.publish_results = True
        public = f"/results/{org.slug}/{vote.id}"
    page.context.clear_cookies()
    page.goto(base_url + public)
    expect(heading(page)).to_have_text("Result: 2027 contract")
    accessible(page)
