"""A union with a roster, a committee and votes ready to schedule, for the vote tests."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.authz import Role
from ratify.orgs.models import Organization
from ratify.rosters import services as rosters
from ratify.rosters.models import BargainingUnit, EmploymentStatus, Member, MembershipStatus
from ratify.rosters.services import MemberFields, UnitFields
from ratify.votes import services as votes
from ratify.votes.models import SecondFactor, TallyGrouping, Vote, VoteKind
from tests.factories import make_org, make_user

CUTOFF = date(2026, 11, 15)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass
class Union:
    org: Organization
    rn: BargainingUnit
    tech: BargainingUnit
    staff: StaffUser
    admin: StaffUser
    committee: list[StaffUser]
    members: list[Member]


def make_union(db: Session, *, rn_members: int = 6, tech_members: int = 3) -> Union:
    """RN members 1001…, TECH members 2001…; one fee payer (9001, in RN); birth dates and
    postal codes for all but the last RN member."""
    org = make_org(db)
    org.timezone = "America/Los_Angeles"
    rn = rosters.create_unit(db, org, actor=None, fields=UnitFields("RN", "Nurses", "", ""))
    tech = rosters.create_unit(db, org, actor=None, fields=UnitFields("TECH", "Techs", "", ""))
    members = []
    people = [(rn, 1001 + n, n == rn_members - 1) for n in range(rn_members)]
    people += [(tech, 2001 + n, False) for n in range(tech_members)]
    for unit, number, bare in people:
        members.append(
            rosters.add_member(
                db,
                org,
                MemberFields(
                    str(number),
                    f"First{number}",
                    f"Last{number}",
                    postal_code="" if bare else "94110-1234",
                    birth_date=None if bare else date(1980 + number % 20, 5, 1),
                ),
                phone_region="US",
                effective=date(2025, 1, 1),
                membership=MembershipStatus.MEMBER,
                employment=EmploymentStatus.ACTIVE,
                units=[unit],
            )
        )
    members.append(
        rosters.add_member(
            db,
            org,
            MemberFields("9001", "Fee", "Payer"),
            phone_region="US",
            effective=date(2025, 1, 1),
            membership=MembershipStatus.FEE_PAYER,
            employment=EmploymentStatus.ACTIVE,
            units=[rn],
        )
    )
    committee = [make_user(db, org, Role.COMMITTEE) for _ in range(2)]
    return Union(
        org=org,
        rn=rn,
        tech=tech,
        staff=make_user(db, org, Role.STAFF),
        admin=make_user(db, org, Role.ADMIN),
        committee=committee,
        members=members,
    )


def fields_for(u: Union, vote: Vote, **changes: object) -> votes.VoteFields:
    """A complete, valid set-up: opens tomorrow for a week."""
    opens = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    options = [
        {lang: o.labels[lang] for lang in vote.languages} for o in votes.worded_options(vote)
    ] or [{lang: f"Option {n}" for lang in vote.languages} for n in (1, 2, 3)]
    fields = votes.VoteFields(
        title=vote.title,
        question={lang: f"Question in {lang}?" for lang in vote.languages},
        options=options,
        opens_at=opens,
        closes_at=opens + timedelta(days=7),
        cutoff=CUTOFF,
        unit_ids=frozenset({u.rn.id, u.tech.id}),
        membership=frozenset({"member"}),
        good_standing=False,
        employment=frozenset({"active", "on_leave"}),
        joined_days_before=None,
        tally_grouping=TallyGrouping.PER_UNIT,
        threshold=votes.Threshold(),
        committee_ids=frozenset(c.id for c in u.committee),
        signatures_required=2,
        second_factor=SecondFactor.BIRTH_YEAR,
        mail_letters=False,
    )
    return replace(fields, **changes)  # type: ignore[arg-type]


def ready_vote(
    db: Session,
    u: Union,
    *,
    kind: VoteKind = VoteKind.RATIFICATION,
    languages: tuple[str, ...] = ("en", "es"),
    **changes: object,
) -> Vote:
    """A draft with everything set that scheduling needs."""
    vote = votes.create_vote(
        db, u.org, actor=u.staff, kind=kind, title="2027 contract", languages=list(languages)
    )
    votes.update_vote(db, u.org, vote, actor=u.staff, fields=fields_for(u, vote, **changes))
    for lang in languages:
        votes.save_document(
            db,
            u.org,
            vote,
            actor=u.staff,
            language=lang,
            summary=f"## Wages\n\n- 4% a year ({lang})",
            pdf=PDF,
            pdf_name="ta.pdf",
        )
    return votes.get_vote(db, u.org, vote.id)
