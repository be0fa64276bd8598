"""Demo data for `make run`: a union with two bargaining units, a community organization with
a constituency, a campaign and an open vote on an offer, and one staff login per role. Loaded
once; later runs only print the logins again."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.accounts.models import StaffUser
from ratify.authz import Role
from ratify.db import utcnow
from ratify.orgs.models import Organization, OrgKind
from ratify.orgs.services import create_organization, org_today
from ratify.rosters.models import BargainingUnit, EmploymentStatus, MembershipStatus, StatusKind
from ratify.rosters.services import (
    MemberFields,
    UnitFields,
    add_member,
    assign_unit,
    create_unit,
    leave_unit,
    set_status,
)
from ratify.security import password_hasher
from ratify.settings import Settings
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor, TallyGrouping, VoteKind

UNION_SLUG = "riverside-nurses"
COMMUNITY_SLUG = "eastside-tenants"


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    where: str


DEMO_LOGINS = [
    DemoLogin("admin", "admin@demo.example", "demo-admin-pass", "both organizations"),
    DemoLogin("staff", "staff@demo.example", "demo-staff-pass", "both organizations"),
    DemoLogin("committee", "committee@demo.example", "demo-committee-pass", "both organizations"),
    DemoLogin("observer", "observer@demo.example", "demo-observer-pass", "Riverside Nurses United"),
]


DEMO_NAMES = [
    ("Ana", "García"), ("Ben", "Okafor"), ("Chen", "Wei"), ("Dana", "Kowalski"),
    ("Eli", "Haddad"), ("Fatima", "Yusuf"), ("Gus", "Lindqvist"), ("Hana", "Sato"),
    ("Iris", "Moreau"), ("Jamal", "Brooks"), ("Keiko", "Tanaka"), ("Luis", "Ortega"),
    ("Maya", "Patel"), ("Nate", "O'Brien"), ("Olga", "Ivanova"), ("Priya", "Nair"),
    ("Quinn", "Murphy"), ("Rosa", "Delgado"), ("Sam", "Cohen"), ("Tomás", "Reyes"),
]  # fmt: skip


def _demo_members(
    db: Session, union: Organization, units: list[BargainingUnit], phone_region: str
) -> None:
    """Twenty members with some history: a fee payer, a leave, a transfer between units."""
    start = date(2024, 1, 1)
    for n, (first, last) in enumerate(DEMO_NAMES):
        member = add_member(
            db,
            union,
            MemberFields(
                member_number=f"{1001 + n}",
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{n}@members.example",
                phone=f"+1 312 555 {100 + n:04d}",
                preferred_language="es" if n % 4 == 0 else "en",
                city="Riverside",
                postal_code=f"6060{n % 10}",
                join_date=start - timedelta(days=200 * (n + 1)),
            ),
            phone_region=phone_region,
            effective=start,
            membership=MembershipStatus.FEE_PAYER if n % 7 == 3 else MembershipStatus.MEMBER,
            employment=EmploymentStatus.ACTIVE,
            units=[units[n % 2]],
        )
        if n == 5:
            set_status(db, member, StatusKind.EMPLOYMENT, "on_leave", date(2025, 9, 1))
        if n == 8:
            leave_unit(db, member, units[0], date(2025, 3, 1))
            assign_unit(db, member, units[1], date(2025, 3, 1))


DEMO_SUMMARY = {
    "en": "## Wages\n\n- 4% in each of the three years\n- Night shift differential up to $3 an hour"
    "\n\n## Staffing\n\n- Safe staffing ratios on every ward by 2028",
    "es": "## Salarios\n\n- 4 % en cada uno de los tres años\n- Plus de turno de noche de hasta 3 $"
    " la hora\n\n## Plantilla\n\n- Proporciones seguras de personal en cada sala para 2028",
}


def _demo_vote(
    db: Session, union: Organization, units: list[BargainingUnit], staff: StaffUser,
    committee: StaffUser,
) -> None:  # fmt: skip
    """A ratification ready to schedule: opening in a week, for one week."""
    vote = votes.create_vote(
        db, union, actor=staff, kind=VoteKind.RATIFICATION,
        title="2027–2030 contract ratification", languages=["en", "es"],
    )  # fmt: skip
    opens = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=7)
    votes.update_vote(
        db,
        union,
        vote,
        actor=staff,
        fields=votes.VoteFields(
            title=vote.title,
            question=dict(votes.DEFAULT_QUESTION),
            options=[dict(o.labels) for o in vote.options],
            opens_at=opens,
            closes_at=opens + timedelta(days=7),
            cutoff=opens.date() - timedelta(days=14),
            unit_ids=frozenset(u.id for u in units),
            membership=frozenset({"member"}),
            good_standing=False,
            employment=frozenset({"active", "on_leave"}),
            joined_days_before=None,
            tally_grouping=TallyGrouping.AGGREGATE,
            threshold=votes.Threshold(),
            committee_ids=frozenset({committee.id}),
            signatures_required=1,
            second_factor=SecondFactor.MEMBER_LAST4,
            mail_letters=False,
        ),
    )
    for language, summary in DEMO_SUMMARY.items():
        votes.save_document(
            db, union, vote, actor=staff, language=language, summary=summary, pdf=None
        )


TENANTS = [
    ("Alma", "Reyes", "1200 Elm St"), ("Bo", "Nguyen", "1200 Elm St"),
    ("Carmen", "Ruiz", "1210 Elm St"), ("Dev", "Shah", "1210 Elm St"),
    ("Esther", "Kim", "1200 Elm St"), ("Felipe", "Mora", "1210 Elm St"),
    ("Gloria", "Price", "3 Oak Ave"), ("Hector", "Lopez", "1200 Elm St"),
]  # fmt: skip
OFFER_TEXT = (
    "## Acme's offer\n\n- Heat and hot water repaired in every unit by January 15\n"
    "- Rent increase capped at 3% next year (not frozen)\n- A repair hotline answered in 48 hours"
)


def _demo_community(
    db: Session,
    community: Organization,
    leader: StaffUser,
    committee: StaffUser,
    settings: Settings,
) -> None:
    """Who "we" are (Elm Street tenants who came to a meeting), a sign-up waiting for
    approval, two events with attendance, a campaign with two demands, the landlord's offer
    assessed demand by demand, and an open vote on it: the whole community path."""
    from ratify.community import campaigns, events, people
    from ratify.community import constituencies as cons
    from ratify.community.decision import create_decision_vote
    from ratify.community.models import EventKind

    today = org_today(community)  # its own date: the cutoff below may not be after it
    constituency = cons.create_constituency(
        db,
        community,
        actor=leader,
        fields=cons.ConstituencyFields(
            name="Elm Street tenants",
            description="Tenants of the two Elm Street buildings owned by Acme Properties",
            area_choices=["1200 Elm St", "1210 Elm St", "3 Oak Ave"],
            relationship_choices=["tenant", "household member"],
            criteria=cons.Criteria(
                areas=frozenset({"1200 Elm St", "1210 Elm St"}), attended_at_least=1, of_last=3
            ),
            approval_required=True,
            signup_open=True,
            consent_text="",
            form_errors={},
        ),
    )
    joined = today - timedelta(days=60)
    members = []
    for n, (first, last, area) in enumerate(TENANTS):
        person = people.sign_up(
            db,
            community,
            constituency,
            people.PersonFields(
                first_name=first,
                last_name=last,
                phone=f"+1 213 555 {200 + n:04d}",
                email=f"{first.lower()}@tenants.example" if n % 2 else "",
                area=area,
                relationship="tenant",
                preferred_language="es" if n % 3 == 0 else "en",
                consent=True,
            ),
            today=joined,
            phone_region=settings.phone_region,
        )
        if n != 7:  # Hector's sign-up waits in the approval queue
            people.approve(db, community, person, actor=leader, today=joined + timedelta(days=1))
        members.append(person.member_id)
    for days, title, kind in ((40, "Building meeting", EventKind.MEETING),
                              (20, "Rally at Acme's office", EventKind.ACTION)):  # fmt: skip
        event = events.create_event(
            db, community, actor=leader,
            fields=events.EventFields(kind=kind, title=title, held_on=today - timedelta(days=days),
                                      location="1200 Elm St courtyard",
                                      constituency_id=constituency.id),
        )  # fmt: skip
        events.record_attendance(db, community, event, members[: 6 if days == 40 else 4],
                                 actor=leader)  # fmt: skip
    events.create_event(
        db, community, actor=leader,
        fields=events.EventFields(kind=EventKind.LISTENING_SESSION, title="Listening session",
                                  held_on=today, location="Community room",
                                  constituency_id=constituency.id),
    )  # fmt: skip
    landlord = campaigns.create_decision_maker(
        db, community, actor=leader,
        fields=campaigns.DecisionMakerFields("Morgan Acme", "Owner", "Acme Properties"),
    )  # fmt: skip
    campaign = campaigns.create_campaign(
        db, community, actor=leader,
        fields=campaigns.CampaignFields("Repairs and a rent freeze", "Heat, repairs, no increase",
                                        str(constituency.id)),
    )  # fmt: skip
    wanted = (
        ("Heat and repairs", "Working heat and hot water in every unit, and every open repair "
         "order closed, before winter."),
        ("Rent freeze", "No rent increase for two years."),
    )  # fmt: skip
    heat, rent = (
        campaigns.add_demand(
            db,
            community,
            campaign,
            actor=leader,
            fields=campaigns.DemandFields(title, text, "pressing", str(landlord.id), ""),
        )
        for title, text in wanted
    )
    offer = campaigns.log_offer(
        db, community, campaign, actor=leader,
        fields=campaigns.OfferFields(
            made_on=(today - timedelta(days=3)).isoformat(), made_by="Morgan Acme",
            text=OFFER_TEXT, decision_maker_id=str(landlord.id),
            assessments={str(heat.id): ("met", "Every unit by January 15"),
                         str(rent.id): ("partly_met", "Capped at 3%, not frozen")},
        ),
    )  # fmt: skip
    vote = create_decision_vote(
        db, community, offer, actor=leader, title="Acme's offer: accept or keep campaigning?",
        cutoff=today,
    )  # fmt: skip
    now = utcnow().replace(second=0, microsecond=0)
    fields = votes.saved_fields(vote, [committee.id])
    votes.update_vote(
        db, community, vote, actor=leader,
        fields=replace(fields, opens_at=now - timedelta(hours=1),
                       closes_at=now + timedelta(days=7), signatures_required=1),
    )  # fmt: skip
    votes.schedule(db, community, vote, actor=leader, secret_key=settings.secret_key)
    votes.advance(db, community, vote)


def load_demo(db: Session, settings: Settings) -> tuple[bool, list[DemoLogin]]:
    existing = db.execute(select(Organization).where(Organization.slug == UNION_SLUG)).first()
    if existing:
        return False, DEMO_LOGINS
    hasher = password_hasher(settings)
    union = create_organization(
        db,
        slug=UNION_SLUG,
        name="Riverside Nurses United",
        kind=OrgKind.UNION,
        timezone="America/Chicago",
    )
    units = [
        create_unit(
            db,
            union,
            actor=None,
            fields=UnitFields(code=code, name=name, employer=employer, description=""),
        )
        for code, name, employer in (
            ("RN", "Registered Nurses", "Riverside General Hospital"),
            ("TECH", "Technical Unit", "Riverside General Hospital"),
        )
    ]
    _demo_members(db, union, units, settings.phone_region)
    community = create_organization(
        db,
        slug=COMMUNITY_SLUG,
        name="Eastside Tenants Association",
        kind=OrgKind.COMMUNITY,
        default_language="es",
        timezone="America/Los_Angeles",
    )
    users: dict[str, StaffUser] = {}
    for login in DEMO_LOGINS:
        name = f"Demo {login.role.capitalize()}"
        added = accounts.add_staff(
            db,
            union,
            actor=None,
            email=login.email,
            name=name,
            role=Role(login.role),
            token_max_age=settings.password_token_max_age,
        )
        accounts.set_password(db, hasher, added.role.user, login.password)
        users[login.role] = added.role.user
        if login.role != "observer":
            accounts.add_staff(
                db,
                community,
                actor=None,
                email=login.email,
                name=name,
                role=Role(login.role),
                token_max_age=settings.password_token_max_age,
            )
    db.flush()
    _demo_vote(db, union, units, users["staff"], users["committee"])
    _demo_community(db, community, users["staff"], users["committee"], settings)
    return True, DEMO_LOGINS
