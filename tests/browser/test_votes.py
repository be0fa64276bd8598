"""Setting up a vote and previewing its ballot in a real browser at a phone's width: once with
JavaScript (axe checking every page), once without (the pages need none)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ratify.authz import Role
from ratify.rosters import services as rosters
from ratify.rosters.models import EmploymentStatus, MembershipStatus
from ratify.rosters.services import MemberFields, UnitFields
from ratify.votes.models import Vote, VoteStatus
from tests.browser.test_staff_flow import check_page, heading, record_cookies, sign_in
from tests.conftest import SecretLedger
from tests.factories import make_org, make_user

pytestmark = [pytest.mark.browser]


@dataclass(frozen=True)
class Setup:
    email: str
    slug: str
    committee: list[str]


@pytest.fixture
def union(live_sessions: sessionmaker[Session]) -> Setup:
    with live_sessions() as s, s.begin():
        org = make_org(s)
        unit = rosters.create_unit(s, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
        for n in range(6):
            rosters.add_member(
                s, org, MemberFields(f"{1001 + n}", f"Ana{n}", "García"), phone_region="US",
                effective=date(2025, 1, 1), membership=MembershipStatus.MEMBER,
                employment=EmploymentStatus.ACTIVE, units=[unit],
            )  # fmt: skip
        committee = [make_user(s, org, Role.COMMITTEE) for _ in range(2)]
        staff = make_user(s, org, Role.STAFF)
        return Setup(staff.email, org.slug, [c.name for c in committee])


def set_up_and_preview(
    page: Page, base: str, union: Setup, ledger: SecretLedger, *, axe: bool
) -> None:
    sign_in(page, base, union.email)
    page.goto(f"{base}/o/{union.slug}/")
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Votes").click()
    expect(heading(page)).to_have_text("Votes")
    check_page(page, axe=axe)

    page.get_by_role("link", name="Set up a vote").click()
    expect(heading(page)).to_have_text("Set up a vote")
    page.get_by_label("Title").fill("2027 nurses' contract")
    page.get_by_label("Ratification of a tentative agreement").check()
    page.get_by_label("Español").check()
    check_page(page, axe=axe)
    page.get_by_role("button", name="Create the draft").click()

    expect(heading(page)).to_have_text("Set up: 2027 nurses' contract")
    check_page(page, axe=axe)
    page.get_by_label("Opens").fill("2030-03-01T09:00")
    page.get_by_label("Closes").fill("2030-03-08T17:00")
    page.get_by_label("Cutoff date", exact=True).fill("2026-11-15")
    page.get_by_label("RN · Nurses").check()
    for name in union.committee:
        page.get_by_label(name).check()
    page.get_by_role("button", name="Save the set-up").click()

    expect(heading(page)).to_have_text("2027 nurses' contract")
    expect(page.get_by_text("Status: Draft")).to_be_visible()
    expect(
        page.get_by_text("Write the agreement's summary in each ballot language.")
    ).to_be_visible()
    check_page(page, axe=axe)

    page.get_by_role("link", name="Edit the documents").click()
    expect(heading(page)).to_have_text("Documents: 2027 nurses' contract")
    check_page(page, axe=axe)
    summary = page.get_by_label("Summary (Markdown: **bold**, lists with -, ## headings)")
    summary.nth(1).fill("## Salarios\n\n- **4 %** al año\n- Más días de vacaciones")
    page.get_by_role("button", name="Save the Español documents").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")

    page.get_by_role("link", name="Back to the vote").click()
    page.get_by_role("link", name="Preview the ballot").nth(1).click()
    # The member's page, in Spanish, with no staff navigation.
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("navigation", name="Organization")).to_have_count(0)
    expect(page.get_by_role("heading", name="Salarios")).to_be_visible()
    check_page(page, axe=axe)
    page.get_by_label("Sí, acepto el acuerdo").check()
    page.get_by_role("button", name="Revisar mi voto").click()
    expect(heading(page)).to_have_text("Revise su voto")
    expect(page.get_by_text("Usted vota: Sí, acepto el acuerdo")).to_be_visible()
    expect(page.get_by_role("button", name="Enviar mi voto")).to_be_disabled()
    check_page(page, axe=axe)
    page.get_by_role("link", name="Cambiar mi elección").click()
    expect(page.get_by_label("No, rechazo el acuerdo")).to_be_visible()
    record_cookies(page, ledger)


def _the_draft(live_sessions: sessionmaker[Session]) -> Vote:
    with live_sessions() as s:
        return s.scalars(select(Vote)).one()


def test_staff_set_up_a_vote_and_preview_its_ballot_on_a_phone(
    page: Page,
    live_server: str,
    live_sessions: sessionmaker[Session],
    union: Setup,
    secret_ledger: SecretLedger,
) -> None:
    set_up_and_preview(page, live_server, union, secret_ledger, axe=True)
    vote = _the_draft(live_sessions)
    assert vote.status == VoteStatus.DRAFT and vote.languages == ["en", "es"]


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_the_same_without_javascript(
    page: Page,
    live_server: str,
    live_sessions: sessionmaker[Session],
    union: Setup,
    secret_ledger: SecretLedger,
) -> None:
    page.set_content('<noscript><p id="off">off</p></noscript>')
    expect(page.locator("#off")).to_be_visible()
    set_up_and_preview(page, live_server, union, secret_ledger, axe=False)
    assert _the_draft(live_sessions).opens_at is not None
