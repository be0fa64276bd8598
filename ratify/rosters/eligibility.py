"""Who may vote: an eligibility rule evaluated on a cutoff date, with a reason for everyone
left out. Set-based (a handful of queries whatever the roster's size), so the preview stays
fast on a 300,000-member roster.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.errors import N_, BadRequest
from ratify.orgs.models import Organization
from ratify.rosters import services as rosters
from ratify.rosters.models import (
    BargainingUnit,
    DuesPayment,
    Member,
    MemberStatusPeriod,
    StatusKind,
    UnitAssignment,
)
from ratify.rosters.queries import in_force

# Reasons, in the order they are reported (a member's first reason is the one counted).
NOT_IN_UNIT = "not_in_unit"
FEE_PAYER = "fee_payer"
NON_MEMBER = "non_member"
NO_STATUS = "no_status"
IN_ARREARS = "in_arrears"
EMPLOYMENT = "employment"
JOINED_TOO_LATE = "joined_too_late"
MANUALLY_EXCLUDED = "manually_excluded"
REASONS = {
    NOT_IN_UNIT: N_("Not in the unit on the cutoff date"),
    FEE_PAYER: N_("Fee payer"),
    NON_MEMBER: N_("Non-member"),
    NO_STATUS: N_("No membership status on the cutoff date"),
    IN_ARREARS: N_("In arrears"),
    EMPLOYMENT: N_("Employment status not allowed (terminated, laid off, ...)"),
    JOINED_TOO_LATE: N_("Joined too late"),
    MANUALLY_EXCLUDED: N_("Excluded by hand"),
}


@dataclass(frozen=True)
class EligibilityRule:
    cutoff: date
    unit_ids: frozenset[uuid.UUID]
    membership: frozenset[str] = frozenset({"member"})
    good_standing: bool = True
    employment: frozenset[str] = frozenset({"active", "on_leave"})
    joined_days_before: int | None = None
    includes: dict[uuid.UUID, str] = field(default_factory=dict)  # member -> reason
    excludes: dict[uuid.UUID, str] = field(default_factory=dict)  # member -> reason


@dataclass(frozen=True)
class Decision:
    member_id: uuid.UUID
    member_number: str
    name: str
    units: tuple[str, ...]  # unit codes on the cutoff date
    reasons: tuple[str, ...]  # empty: eligible
    note: str = ""  # the reason given for a manual include or exclude

    @property
    def eligible(self) -> bool:
        return not self.reasons


@dataclass
class EligibilityPreview:
    rule: EligibilityRule
    decisions: list[Decision]

    @property
    def included(self) -> int:
        return sum(1 for d in self.decisions if d.eligible)

    def excluded_by_reason(self) -> Counter[str]:
        return Counter(d.reasons[0] for d in self.decisions if d.reasons)

    def per_unit(self) -> dict[str, tuple[int, int]]:
        """Unit code -> (included, excluded) among members in it on the cutoff date."""
        counts: dict[str, list[int]] = {}
        for d in self.decisions:
            for code in d.units:
                counts.setdefault(code, [0, 0])[0 if d.eligible else 1] += 1
        return {code: (inc, exc) for code, (inc, exc) in sorted(counts.items())}


def evaluate(db: Session, org: Organization, rule: EligibilityRule) -> EligibilityPreview:
    """Everyone ever assigned to the rule's units (and anyone included by hand), each either
    eligible or with every reason they are not."""
    rosters.require_union(org)
    units = {
        u.id: u.code
        for u in db.scalars(
            select(BargainingUnit).where(
                BargainingUnit.organization_id == org.id, BargainingUnit.id.in_(rule.unit_ids)
            )
        )
    }
    if not units or len(units) != len(rule.unit_ids):
        raise BadRequest(N_("Choose at least one bargaining unit of this organization."))
    cutoff = rule.cutoff
    population = (
        select(UnitAssignment.member_id)
        .where(UnitAssignment.unit_id.in_(units))
        .union(select(Member.id).where(Member.id.in_(list(rule.includes))))
        .subquery()
    )
    members = db.execute(
        select(
            Member.id, Member.member_number, Member.first_name, Member.last_name, Member.join_date
        )
        .where(Member.organization_id == org.id, Member.id.in_(select(population)))
        .order_by(Member.sort_name, Member.member_number)
    ).all()
    in_unit: dict[uuid.UUID, list[str]] = {}
    for member_id, unit_id in db.execute(
        select(UnitAssignment.member_id, UnitAssignment.unit_id).where(
            UnitAssignment.unit_id.in_(units),
            in_force(UnitAssignment.start_date, UnitAssignment.end_date, cutoff),
        )
    ).all():
        in_unit.setdefault(member_id, []).append(units[unit_id])
    status: dict[tuple[uuid.UUID, StatusKind], str] = {
        (member_id, kind): value
        for member_id, kind, value in db.execute(
            select(MemberStatusPeriod.member_id, MemberStatusPeriod.kind, MemberStatusPeriod.status)
            .join(population, population.c[0] == MemberStatusPeriod.member_id)
            .where(in_force(MemberStatusPeriod.start_date, MemberStatusPeriod.end_date, cutoff))
        ).all()
    }
    paid_through = dict(
        db.execute(
            select(DuesPayment.member_id, func.max(DuesPayment.period))
            .join(population, population.c[0] == DuesPayment.member_id)
            .where(DuesPayment.received_on <= cutoff)
            .group_by(DuesPayment.member_id)
        ).all()
    )
    months_now = cutoff.year * 12 + cutoff.month
    decisions = []
    for member_id, number, first, last, joined in members:
        reasons: list[str] = []
        note = ""
        codes = tuple(sorted(in_unit.get(member_id, [])))
        if not codes:
            reasons.append(NOT_IN_UNIT)
        membership = status.get((member_id, StatusKind.MEMBERSHIP))
        if membership is None:
            reasons.append(NO_STATUS)
        elif membership not in rule.membership:
            reasons.append(FEE_PAYER if membership == "fee_payer" else NON_MEMBER)
        if rule.good_standing:
            through = paid_through.get(member_id)
            if through is not None:
                arrears = max(0, months_now - (through.year * 12 + through.month) - 1)
            elif joined is not None:
                arrears = max(0, months_now - (joined.year * 12 + joined.month))
            else:
                arrears = None
            if arrears is None or arrears > org.dues_grace_months:
                reasons.append(IN_ARREARS)
        if status.get((member_id, StatusKind.EMPLOYMENT)) not in rule.employment:
            reasons.append(EMPLOYMENT)
        if rule.joined_days_before is not None and (
            joined is None or joined > cutoff - timedelta(days=rule.joined_days_before)
        ):
            reasons.append(JOINED_TOO_LATE)
        if member_id in rule.excludes:
            reasons = [MANUALLY_EXCLUDED, *reasons]
            note = rule.excludes[member_id]
        elif member_id in rule.includes:
            reasons = []
            note = rule.includes[member_id]
        decisions.append(
            Decision(member_id, number, f"{last}, {first}".strip(", "), codes, tuple(reasons), note)
        )
    return EligibilityPreview(rule, decisions)
