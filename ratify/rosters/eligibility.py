"""Who may vote: an eligibility rule evaluated on a cutoff date, with a reason for everyone
left out. Set-based (a handful of queries whatever the roster's size), so the preview stays
fast on a 300,000-member roster.
"""

from __future__ import annotations

import gc
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, null, select, text
from sqlalchemy.orm import Session, aliased

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


class Decision(NamedTuple):
    """One member's eligibility (a named tuple: 300,000 of them are made per preview)."""

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
    eligible or with every reason they are not. One query: the database looks up each
    member's units, statuses and dues on the cutoff (correlated subqueries on indexed
    columns), so a 300,000-member roster is one pass, not several joined in Python."""
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

    paid = (
        select(
            DuesPayment.member_id.label("member_id"),
            func.max(DuesPayment.period).label("through"),
        )
        .where(DuesPayment.organization_id == org.id, DuesPayment.received_on <= cutoff)
        .group_by(DuesPayment.member_id)
        .subquery()
    )
    membership = aliased(MemberStatusPeriod, name="membership")
    employment = aliased(MemberStatusPeriod, name="employment")
    unit = aliased(UnitAssignment, name="unit_on")
    unit_code = aliased(BargainingUnit, name="unit_code")
    population = select(UnitAssignment.member_id).where(UnitAssignment.unit_id.in_(units))
    if rule.includes:
        population = population.union(select(Member.id).where(Member.id.in_(list(rule.includes))))  # type: ignore[assignment]
    # Plain outer joins, with "in force on the cutoff" in each join's condition: a member has
    # at most one status of each kind on a date, so only the units (a member may be in two)
    # can repeat a member, on adjacent rows the loop below merges. Hash joins: one pass over
    # each table, whatever the planner knows of their sizes.
    stmt = (
        select(
            Member.id,
            Member.member_number,
            Member.first_name,
            Member.last_name,
            Member.join_date,
            unit_code.code,
            membership.status,
            employment.status,
            paid.c.through if rule.good_standing else null(),
        )
        .outerjoin(
            unit,
            and_(
                unit.member_id == Member.id,
                unit.unit_id.in_(units),
                in_force(unit.start_date, unit.end_date, cutoff),
            ),
        )
        .outerjoin(unit_code, unit_code.id == unit.unit_id)  # a code, not a UUID to build
        .outerjoin(
            membership,
            and_(
                membership.member_id == Member.id,
                membership.kind == StatusKind.MEMBERSHIP,
                in_force(membership.start_date, membership.end_date, cutoff),
            ),
        )
        .outerjoin(
            employment,
            and_(
                employment.member_id == Member.id,
                employment.kind == StatusKind.EMPLOYMENT,
                in_force(employment.start_date, employment.end_date, cutoff),
            ),
        )
    )
    if rule.good_standing:  # the dues of every member, grouped: only when the rule asks
        stmt = stmt.outerjoin(paid, paid.c.member_id == Member.id)
    stmt = stmt.where(
        Member.organization_id == org.id,
        # One IN (subquery), never IN ... OR IN ...: PostgreSQL hashes the former, but
        # rescans the subquery for every member with the latter.
        Member.id.in_(population),
    ).order_by(Member.sort_name, Member.member_number, Member.id)
    if db.get_bind().dialect.name == "postgresql":
        # One big report query: room to hash in memory, and no JIT (compiling it costs more
        # than it saves). Parallel workers share their hash tables on these plain joins.
        db.execute(text("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off"))
    months_now = cutoff.year * 12 + cutoff.month
    joined_by = (
        cutoff - timedelta(days=rule.joined_days_before)
        if rule.joined_days_before is not None
        else None
    )
    grace = org.dues_grace_months
    decisions: list[Decision] = []
    rows = db.connection().execute(stmt)  # Core rows: the ORM adds nothing to plain columns
    with no_gc_pauses():
        _decide(rows, rule, decisions, months_now, joined_by, grace)
    return EligibilityPreview(rule, decisions)


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """While 300,000 decisions are made: they hold no reference cycles, yet each batch of new
    objects would have the cyclic collector scan all those made so far (0.6 s of a 2.5 s
    preview on 300,000 members, bench/roster_import.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decide(
    rows: Any,
    rule: EligibilityRule,
    decisions: list[Decision],
    months_now: int,
    joined_by: date | None,
    grace: int,
) -> None:
    for (
        member_id,
        number,
        first,
        last,
        joined,
        code,
        membership_status,
        employment_status,
        through,
    ) in rows:
        if decisions and decisions[-1].member_id == member_id:  # in a second unit
            previous = decisions[-1]
            decisions[-1] = previous._replace(
                units=tuple(sorted({*previous.units, code})),
                reasons=tuple(r for r in previous.reasons if r != NOT_IN_UNIT),
            )
            continue
        reasons: list[str] = []
        note = ""
        unit_codes = (code,) if code is not None else ()
        if not unit_codes:
            reasons.append(NOT_IN_UNIT)
        if membership_status is None:
            reasons.append(NO_STATUS)
        elif membership_status not in rule.membership:
            reasons.append(FEE_PAYER if membership_status == "fee_payer" else NON_MEMBER)
        if rule.good_standing:
            if through is not None:
                arrears = max(0, months_now - (through.year * 12 + through.month) - 1)
            elif joined is not None:
                arrears = max(0, months_now - (joined.year * 12 + joined.month))
            else:
                arrears = None
            if arrears is None or arrears > grace:
                reasons.append(IN_ARREARS)
        if employment_status not in rule.employment:
            reasons.append(EMPLOYMENT)
        if joined_by is not None and (joined is None or joined > joined_by):
            reasons.append(JOINED_TOO_LATE)
        if rule.excludes and member_id in rule.excludes:
            reasons = [MANUALLY_EXCLUDED, *reasons]
            note = rule.excludes[member_id]
        elif rule.includes and member_id in rule.includes:
            reasons = []
            note = rule.includes[member_id]
        decisions.append(
            Decision(
                member_id, number, f"{last}, {first}".strip(", "), unit_codes, tuple(reasons), note
            )
        )
