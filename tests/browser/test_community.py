"""A resident's whole path through community decisions, in a real browser: they sign up
through the constituency's public link, a leader approves them from the queue, they check in
at a meeting with its code, and once the offer is put to a vote they decide it on their
phone with the last digits of the phone they signed up with. At 390 px with JavaScript (axe
on every page), and at 320 px without JavaScript (the app needs none)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ratify.accounts.models import StaffUser
from ratify.authz import Role
from ratify.community import campaigns, events, people
from ratify.community.decision import create_decision_vote
from ratify.community.models import (
    Attendance,
    AttendanceMethod,
    ConstituencyMember,
    EventKind,
    PersonStatus,
)
from ratify.orgs.models import Organization
from ratify.orgs.services import org_today
from ratify.rosters.models import Member
from ratify.settings import Settings
from ratify.votes import services as votes
from ratify.votes.models import Ballot, Vote, Voter, VoterStatus, VoteStatus
from tests.browser.test_staff_flow import NewContext, accessible, record_cookies, sign_in
from tests.browser.test_voting import fits
from tests.community.support import make_community, make_constituency
from tests.conftest import SecretLedger
from tests.factories import make_user
from tests.votes.test_casting import link_of

pytestmark = [pytest.mark.browser]

AREA, RELATIONSHIP = "12 Elm St", "tenant"
NEIGHBOUR_PHONE = "+14155550190"  # signed up, approved and at the meeting before the test


@dataclass(frozen=True)
class Community:
    org_id: uuid.UUID
    slug: str
    leader_email: str
    constituency_id: uuid.UUID
    constituency_name: str
    signup_code: str
    event_title: str
    event_code: str
    offer_id: uuid.UUID


@pytest.fixture
def community(live_sessions: sessionmaker[Session]) -> Community:
    """A tenants' association whose constituency counts those who came to the last meeting;
    a leader, a campaign with an offer on the table, today's meeting, and one neighbour
    already signed up, approved and recorded at the meeting."""
    with live_sessions() as db, db.begin():
        org = make_community(db)
        leader = make_user(db, org, Role.STAFF)
        constituency = make_constituency(
            db,
            org,
            area_choices=[AREA, "3 Oak Ave"],
            relationship_choices=[RELATIONSHIP, "worker"],
            criteria={"areas": [AREA], "attended": {"at_least": 1, "of_last": 1}},
            approval_required=True,
        )
        today = org_today(org)
        event = events.create_event(
            db,
            org,
            actor=leader,
            fields=events.EventFields(
                kind=EventKind.MEETING,
                title="Elm Street tenants' meeting",
                held_on=today,
                location="Community hall",
                constituency_id=constituency.id,
            ),
        )
        neighbour = people.sign_up(
            db, org, constituency,
            people.PersonFields(first_name="Nell", last_name="Neighbour", phone=NEIGHBOUR_PHONE,
                                area=AREA, relationship=RELATIONSHIP, preferred_language="en",
                                consent=True),
            today=today,
        )  # fmt: skip
        people.approve(db, org, neighbour, actor=leader, today=today)
        events.record_attendance(db, org, event, [neighbour.member_id], actor=leader)
        maker = campaigns.create_decision_maker(
            db, org, actor=leader,
            fields=campaigns.DecisionMakerFields("Pat Landlord", "Owner", "Acme Properties"),
        )  # fmt: skip
        campaign = campaigns.create_campaign(
            db, org, actor=leader,
            fields=campaigns.CampaignFields("Repairs now", "Fix the buildings",
                                            str(constituency.id)),
        )  # fmt: skip
        demand = campaigns.add_demand(
            db, org, campaign, actor=leader,
            fields=campaigns.DemandFields("Heat", "Heat in every unit by winter", "pressing",
                                          str(maker.id), ""),
        )  # fmt: skip
        offer = campaigns.log_offer(
            db, org, campaign, actor=leader,
            fields=campaigns.OfferFields(
                made_on=today.isoformat(), made_by="Pat Landlord",
                text="## The landlord's offer\n\nNew boilers in every building by January.",
                decision_maker_id=str(maker.id),
                assessments={str(demand.id): ("met", "All units")},
            ),
        )  # fmt: skip
        return Community(
            org.id, org.slug, leader.email, constituency.id, constituency.name,
            constituency.signup_code, event.title, event.checkin_code, offer.id,
        )  # fmt: skip


# -- the resident's and the leader's pages ------------------------------------------------------


def check(page: Page, width: int, axe: bool) -> None:
    fits(page, width)
    if axe:
        accessible(page)


def signs_up(page: Page, c: Community, first: str, phone: str, *, width: int, axe: bool) -> None:
    page.goto(f"/join/{c.signup_code}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Join {c.constituency_name}")
    check(page, width, axe)
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill("Resident")
    page.get_by_label("Mobile phone").fill(phone)
    page.get_by_label("Where you live or work").select_option(AREA)
    page.get_by_label("How you are connected").select_option(RELATIONSHIP)
    page.get_by_label("Language for messages").select_option("en")
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for signing up")
    expect(page.get_by_role("status")).to_contain_text("An organizer will check it")
    check(page, width, axe)


def leader_approves(page: Page, c: Community, first: str, *, width: int, axe: bool) -> None:
    sign_in(page, "", c.leader_email)
    expect(page).to_have_url(re.compile(rf"/o/{c.slug}/$"))
    page.goto(f"/o/{c.slug}/constituencies/{c.constituency_id}/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Approval queue: {c.constituency_name}"
    )
    expect(page.get_by_text("1 waiting for approval.")).to_be_visible()
    card = page.get_by_role("listitem").filter(has_text=f"{first} Resident")
    expect(card).to_contain_text(AREA)
    check(page, width, axe)
    card.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").first).to_have_text("Approved.")
    expect(page.get_by_text("Nobody is waiting.")).to_be_visible()
    check(page, width, axe)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def checks_in(page: Page, c: Community, phone: str, *, width: int, axe: bool) -> None:
    page.goto("/checkin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check in")
    check(page, width, axe)
    page.get_by_label("Event code").fill(c.event_code.lower())  # typed as it comes
    page.get_by_label("Your phone number or email").fill(phone)
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are checked in")
    expect(page.get_by_role("status")).to_have_text(f"Thank you for coming to {c.event_title}.")
    check(page, width, axe)


def decides(page: Page, link: str, phone: str, *, width: int, axe: bool) -> str:
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Repairs now: the offer")
    check(page, width, axe)
    page.get_by_label("Last 4 digits of the phone number").fill(phone[-4:])
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/v/ballot$"))  # the credential is left behind
    expect(page.get_by_role("heading", name="What you are voting on")).to_be_visible()
    expect(page.locator(".summary")).to_contain_text("New boilers in every building by January.")
    ballot = page.get_by_role("group", name="Do you accept the offer?")
    expect(ballot.get_by_role("radio")).to_have_count(2)
    check(page, width, axe)
    ballot.get_by_role("radio", name="Accept the offer").check()
    page.get_by_role("button", name="Review my vote").click()
    expect(page.get_by_text("You are voting: Accept the offer")).to_be_visible()
    check(page, width, axe)
    page.get_by_role("button", name="Submit my vote").click()
    expect(page.get_by_role("heading", name="Your vote was counted")).to_be_visible()
    check(page, width, axe)
    receipt = page.locator(".receipt code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", receipt)
    return receipt


# -- the vote, set up in the database ---------------------------------------------------------


def open_decision(
    live_sessions: sessionmaker[Session], settings: Settings, c: Community
) -> dict[str, str]:
    """The offer put to a vote of the constituency as it stands today, scheduled (the list
    frozen) and opened; each eligible voter's personal link, by phone."""
    with live_sessions() as db, db.begin():
        org = db.get_one(Organization, c.org_id)
        leader = db.scalars(select(StaffUser).where(StaffUser.email == c.leader_email)).one()
        committee = [make_user(db, org, Role.COMMITTEE) for _ in range(2)]
        offer = campaigns.get_offer(db, org, c.offer_id)
        vote = create_decision_vote(
            db, org, offer, actor=leader, title="Repairs now: the offer",
            cutoff=org_today(org),
        )  # fmt: skip
        opens = datetime.now(UTC) + timedelta(hours=1)
        votes.update_vote(db, org, vote, actor=leader, fields=replace(
            votes.saved_fields(vote, [m.id for m in committee]),
            opens_at=opens, closes_at=opens + timedelta(days=1),
            committee_ids=frozenset(m.id for m in committee), signatures_required=2,
        ))  # fmt: skip
        votes.schedule(db, org, vote, actor=leader, secret_key=settings.secret_key)
        now = datetime.now(UTC)
        db.execute(update(Vote).where(Vote.id == vote.id).values(
            opens_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=1)))  # fmt: skip
        db.expire_all()
        vote = votes.get_vote(db, org, vote.id)
        votes.advance(db, org, vote)
        assert vote.status == VoteStatus.OPEN
        listed = db.execute(
            select(Voter, Member.phone)
            .join(Member, Member.id == Voter.member_id)
            .where(Voter.vote_id == vote.id, Voter.status == VoterStatus.ELIGIBLE)
        ).all()
        return {phone: link_of(settings.secret_key, v) for v, phone in listed}


# -- the tests -------------------------------------------------------------------------------


def joins_and_attends(
    page: Page,
    leader: Page,
    c: Community,
    live_sessions: sessionmaker[Session],
    ledger: SecretLedger,
    first: str,
    phone: str,
    *,
    width: int,
    axe: bool,
) -> None:
    signs_up(page, c, first, phone, width=width, axe=axe)
    leader_approves(leader, c, first, width=width, axe=axe)
    record_cookies(leader, ledger)
    checks_in(page, c, phone, width=width, axe=axe)
    with live_sessions() as db:
        person = db.execute(
            select(ConstituencyMember)
            .join(Member, Member.id == ConstituencyMember.member_id)
            .where(Member.phone == phone)
        ).scalar_one()
        assert person.status == PersonStatus.APPROVED
        assert (person.area, person.relationship) == (AREA, RELATIONSHIP)
        methods = db.scalars(
            select(Attendance.method).where(Attendance.member_id == person.member_id)
        ).all()
        assert methods == [AttendanceMethod.CHECKIN]


def ballots(live_sessions: sessionmaker[Session]) -> int:
    with live_sessions() as db:
        return len(db.scalars(select(Ballot.id)).all())


def test_a_resident_joins_checks_in_and_decides_the_offer_on_a_phone(
    page: Page,
    new_context: NewContext,
    community: Community,
    live_sessions: sessionmaker[Session],
    live_settings: Settings,
    secret_ledger: SecretLedger,
) -> None:
    phone = "+14155550123"
    leader = new_context().new_page()
    joins_and_attends(
        page, leader, community, live_sessions, secret_ledger, "Rosa", phone, width=390, axe=True
    )
    # The meeting made them count: the list frozen today holds the neighbour and them.
    links = open_decision(live_sessions, live_settings, community)
    assert set(links) == {NEIGHBOUR_PHONE, phone}
    secret_ledger.add(links[phone].rpartition("/")[2])
    secret_ledger.add(decides(page, links[phone], phone, width=390, axe=True))
    record_cookies(page, secret_ledger)
    assert ballots(live_sessions) == 1


@pytest.mark.browser_context_args(java_script_enabled=False, viewport={"width": 320, "height": 640})
def test_a_resident_joins_checks_in_and_decides_at_320_pixels_without_javascript(
    page: Page,
    new_context: NewContext,
    community: Community,
    live_sessions: sessionmaker[Session],
    live_settings: Settings,
    secret_ledger: SecretLedger,
) -> None:
    page.set_content('<noscript><p id="off">off</p></noscript>')
    expect(page.locator("#off")).to_be_visible()  # scripts really are off
    phone = "+14155550145"
    leader = new_context().new_page()
    joins_and_attends(
        page, leader, community, live_sessions, secret_ledger, "Sam", phone, width=320, axe=False
    )
    links = open_decision(live_sessions, live_settings, community)
    assert set(links) == {NEIGHBOUR_PHONE, phone}
    secret_ledger.add(links[phone].rpartition("/")[2])
    secret_ledger.add(decides(page, links[phone], phone, width=320, axe=False))
    record_cookies(page, secret_ledger)
    assert ballots(live_sessions) == 1
