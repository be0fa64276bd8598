"""Dues: remittance (check-off) files, manual corrections, and good standing on any date.

Good standing is computed, never stored: on date D a member is in good standing when their
membership status on D is "member" and their dues are at most the organization's grace months
in arrears on D, counting only payments received by D.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.errors import N_, BadRequest, Conflict
from ratify.orgs.models import Organization
from ratify.rosters import queries
from ratify.rosters import services as rosters
from ratify.rosters.imports import (
    RosterFile,
    RosterFileError,
    RowError,
    guess_mapping,
    looks_like_formula,
    record_import,
    refuse_seen_file,
)
from ratify.rosters.models import DuesPayment, ImportScope, Member, RosterImport, StatusKind

DUES_SYNONYMS: dict[str, tuple[str, ...]] = {
    "member_number": ("member number", "member no", "member id", "employee id", "emp id", "id",
                      "payroll id", "badge"),
    "period": ("period", "month", "dues month", "pay period", "dues period"),
    "amount": ("amount", "dues", "deduction", "dues amount", "paid"),
}  # fmt: skip
PERIOD_FORMATS = ("%Y-%m", "%m/%Y", "%b %Y", "%B %Y", "%Y%m", "%Y-%m-%d", "%m/%d/%Y")


def _month(day: date) -> date:
    return day.replace(day=1)


def _months(day: date) -> int:
    return day.year * 12 + day.month


def parse_period(raw: str) -> date | None:
    raw = raw.strip()
    for fmt in PERIOD_FORMATS:
        try:
            return _month(datetime.strptime(raw, fmt).date())  # noqa: DTZ007 (a month, no zone)
        except ValueError:
            continue
    return None


def parse_amount(raw: str) -> int | None:
    """Cents from "12.50", "$12.50", "1,234.56" or "-5" (a refund); None if not an amount."""
    cleaned = re.sub(r"[\s$€£,]", "", raw)
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite() or abs(value) >= 1_000_000:
        return None
    return int((value * 100).quantize(Decimal(1)))


def paid_through(db: Session, member: Member, on: date) -> date | None:
    """The latest month paid for, counting payments received by ``on``."""
    stmt = select(func.max(DuesPayment.period)).where(
        DuesPayment.member_id == member.id, DuesPayment.received_on <= on
    )
    return db.execute(stmt).scalar_one()


def months_in_arrears(db: Session, member: Member, on: date) -> int | None:
    """Whole months unpaid before ``on``'s month (the current month is not yet late). None
    when nothing was ever paid and nothing says when dues began."""
    through = paid_through(db, member, on)
    if through is None:
        if member.join_date is None:
            return None
        return max(0, _months(on) - _months(member.join_date))
    return max(0, _months(on) - _months(through) - 1)


def in_good_standing(db: Session, org: Organization, member: Member, on: date) -> bool:
    if queries.status_on(db, member, StatusKind.MEMBERSHIP, on) != "member":
        return False
    arrears = months_in_arrears(db, member, on)
    return arrears is not None and arrears <= org.dues_grace_months


def history(db: Session, member: Member, limit: int = 24) -> list[DuesPayment]:
    stmt = (
        select(DuesPayment)
        .where(DuesPayment.member_id == member.id)
        .order_by(DuesPayment.period.desc(), DuesPayment.created_at.desc())
        .limit(limit)
    )
    return list(db.scalars(stmt))


def correct(
    db: Session,
    org: Organization,
    member: Member,
    *,
    actor: StaffUser,
    period: date,
    amount_cents: int,
    received_on: date,
    reason: str,
) -> DuesPayment:
    """A manual correction (a missed deduction paid in cash, a reversal): needs a reason and
    is audited."""
    if member.organization_id != org.id:
        raise BadRequest()
    if not reason.strip():
        raise BadRequest(N_("Say why the dues record is being corrected."))
    payment = DuesPayment(
        organization_id=org.id,
        member_id=member.id,
        period=_month(period),
        amount_cents=amount_cents,
        received_on=received_on,
        source="correction",
        reason=reason.strip()[:2000],
    )
    db.add(payment)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="dues.corrected",
        object_type="dues_payment",
        object_id=payment.id,
        member_id=member.id,
        data={
            "period": payment.period.isoformat()[:7],
            "amount_cents": amount_cents,
            "reason": payment.reason,
        },
    )
    return payment


# -- remittance files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DuesRow:
    row: int
    member_number: str
    period: date
    amount_cents: int


@dataclass
class DuesPreview:
    roster: RosterFile
    received_on: date
    rows: list[DuesRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.roster.row_count,
            "payments": len(self.rows),
            "members": len({r.member_number for r in self.rows}),
            "errors": len({e.row for e in self.errors}),
        }


def guess_dues_mapping(headers: list[str]) -> dict[str, str]:
    return guess_mapping(headers, DUES_SYNONYMS)


def preview_dues(
    db: Session,
    org: Organization,
    roster: RosterFile,
    *,
    mapping: Mapping[str, str],
    received_on: date,
) -> DuesPreview:
    rosters.require_union(org)
    missing = [name for name in DUES_SYNONYMS if name not in mapping]
    if missing:
        raise RosterFileError(
            N_("Map the columns for the member number, the period and the amount.")
        )
    index = {name: roster.headers.index(mapping[name]) for name in DUES_SYNONYMS}
    known = set(db.scalars(select(Member.member_number).where(Member.organization_id == org.id)))
    result = DuesPreview(roster, received_on)
    for offset, cells in enumerate(roster.iter_rows()):
        number = offset + 2
        values = {n: (cells[i].strip() if i < len(cells) else "") for n, i in index.items()}
        problems = []
        if any(looks_like_formula(v) for v in values.values()):
            problems.append(
                RowError(
                    number, mapping["member_number"], N_("A cell may not start with a formula.")
                )
            )
        if values["member_number"] not in known:
            problems.append(
                RowError(number, mapping["member_number"], N_("No member has this number."))
            )
        period = parse_period(values["period"])
        if period is None:
            problems.append(
                RowError(number, mapping["period"], N_("This is not a month (use 2026-10)."))
            )
        amount = parse_amount(values["amount"])
        if amount is None:
            problems.append(RowError(number, mapping["amount"], N_("This is not an amount.")))
        if problems:
            result.errors += problems
        else:
            assert period is not None and amount is not None
            result.rows.append(DuesRow(number, values["member_number"], period, amount))
    return result


def apply_dues(
    db: Session, org: Organization, result: DuesPreview, *, actor_label: str
) -> RosterImport:
    """Record every payment of the file, or (on any row error, or a file seen before) none."""
    if result.errors:
        raise Conflict(
            N_("%(count)s rows have errors: nothing was imported. Correct the file and try again."),
            count=result.counts()["errors"],
        )
    refuse_seen_file(db, org, result.roster)
    ids = dict(
        db.execute(
            select(Member.member_number, Member.id).where(Member.organization_id == org.id)
        ).all()
    )
    db.add_all(
        DuesPayment(
            organization_id=org.id,
            member_id=ids[row.member_number],
            period=row.period,
            amount_cents=row.amount_cents,
            received_on=result.received_on,
            source=result.roster.file_name[:255],
        )
        for row in result.rows
    )
    return record_import(
        db,
        org,
        result.roster,
        scope=ImportScope.DUES,
        unit=None,
        effective=result.received_on,
        mapping={},
        counts=result.counts(),
        actor=None,
        actor_label=actor_label,
        action="dues.imported",
    )
