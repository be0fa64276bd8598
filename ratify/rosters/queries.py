"""Reading the roster: members as of any date, search and paging, a member's history."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from ratify.contact import normalize_email, normalize_phone
from ratify.errors import NotFound
from ratify.orgs.models import Organization
from ratify.rosters.models import (
    BargainingUnit,
    ImportTouch,
    Member,
    MemberStatusPeriod,
    RosterImport,
    StatusKind,
    UnitAssignment,
)


def in_force(
    start: InstrumentedAttribute[date], end: InstrumentedAttribute[date | None], on: date
) -> ColumnElement[bool]:
    """start <= on < end (an open end is in force)."""
    return and_(start <= on, or_(end.is_(None), end > on))


def member_ids(db: Session, org: Organization, numbers: Iterable[str]) -> dict[str, uuid.UUID]:
    """Member number -> id, for this organization's members among ``numbers``."""
    wanted = sorted(set(numbers))
    found: dict[str, uuid.UUID] = {}
    for start in range(0, len(wanted), 1000):
        stmt = select(Member.member_number, Member.id).where(
            Member.organization_id == org.id,
            Member.member_number.in_(wanted[start : start + 1000]),
        )
        found.update((number, member_id) for number, member_id in db.execute(stmt).all())
    return found


def get_member(db: Session, org: Organization, member_id: uuid.UUID) -> Member:
    """A member of *this* organization; anyone else's is 404."""
    stmt = select(Member).where(Member.id == member_id, Member.organization_id == org.id)
    member = db.execute(stmt).scalar_one_or_none()
    if member is None:
        raise NotFound()
    return member


def status_on(db: Session, member: Member, kind: StatusKind, on: date) -> str | None:
    stmt = select(MemberStatusPeriod.status).where(
        MemberStatusPeriod.member_id == member.id,
        MemberStatusPeriod.kind == kind,
        in_force(MemberStatusPeriod.start_date, MemberStatusPeriod.end_date, on),
    )
    return db.execute(stmt).scalar_one_or_none()


def units_on(db: Session, member: Member, on: date) -> list[BargainingUnit]:
    stmt = (
        select(BargainingUnit)
        .join(UnitAssignment, UnitAssignment.unit_id == BargainingUnit.id)
        .where(
            UnitAssignment.member_id == member.id,
            in_force(UnitAssignment.start_date, UnitAssignment.end_date, on),
        )
        .order_by(BargainingUnit.code)
    )
    return list(db.scalars(stmt))


def members_in_unit_on(
    unit: BargainingUnit, on: date, membership: set[str] | None = None
) -> Select[Member]:
    """Who was in ``unit`` on ``on`` (and, if given, held one of these membership statuses
    then): a query, for any past date."""
    stmt = (
        select(Member)
        .join(UnitAssignment, UnitAssignment.member_id == Member.id)
        .where(
            UnitAssignment.unit_id == unit.id,
            Member.organization_id == unit.organization_id,
            in_force(UnitAssignment.start_date, UnitAssignment.end_date, on),
        )
    )
    if membership is not None:
        stmt = stmt.join(
            MemberStatusPeriod,
            and_(
                MemberStatusPeriod.member_id == Member.id,
                MemberStatusPeriod.kind == StatusKind.MEMBERSHIP,
                in_force(MemberStatusPeriod.start_date, MemberStatusPeriod.end_date, on),
            ),
        ).where(MemberStatusPeriod.status.in_(membership))
    return stmt.order_by(Member.sort_name, Member.member_number)


def unit_counts_on(db: Session, org: Organization, on: date) -> list[tuple[BargainingUnit, int]]:
    """Members per (unarchived) unit on a date: the counts everyone in the organization sees."""
    counted = (
        select(UnitAssignment.unit_id, func.count().label("n"))
        .where(in_force(UnitAssignment.start_date, UnitAssignment.end_date, on))
        .group_by(UnitAssignment.unit_id)
        .subquery()
    )
    stmt = (
        select(BargainingUnit, func.coalesce(counted.c.n, 0))
        .outerjoin(counted, counted.c.unit_id == BargainingUnit.id)
        .where(BargainingUnit.organization_id == org.id, BargainingUnit.archived_at.is_(None))
        .order_by(BargainingUnit.code)
    )
    return [(unit, int(n)) for unit, n in db.execute(stmt).all()]


@dataclass(frozen=True)
class MemberPage:
    members: list[Member]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def search_members(
    db: Session,
    org: Organization,
    query: str,
    *,
    phone_region: str,
    page: int = 1,
    per_page: int = 50,
) -> MemberPage:
    """Members by name (prefix of last name, or of "last first"), member number, email or
    phone; every branch uses an index, so it stays fast on a 300,000-member roster."""
    stmt = select(Member).where(Member.organization_id == org.id)
    query = query.strip()
    if query:
        lowered = query.lower()
        escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [
            Member.sort_name.like(f"{escaped}%", escape="\\"),
            Member.member_number == query,
        ]
        if email := normalize_email(query):
            matches.append(Member.email == email)
        if any(ch.isdigit() for ch in query) and (phone := normalize_phone(query, phone_region)):
            matches.append(Member.phone == phone)
        stmt = stmt.where(or_(*matches))
    total = db.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    page = max(1, min(page, max(1, -(-total // per_page))))
    rows = db.scalars(
        stmt.order_by(Member.sort_name, Member.member_number)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return MemberPage(list(rows), total, page, per_page)


@dataclass(frozen=True)
class HistoryRow:
    what: str  # "membership", "employment" or a unit code
    value: str
    start_date: date
    end_date: date | None


def member_history(db: Session, member: Member) -> list[HistoryRow]:
    """Every dated period of the member, newest first."""
    statuses = db.scalars(
        select(MemberStatusPeriod).where(MemberStatusPeriod.member_id == member.id)
    )
    rows = [HistoryRow(p.kind.value, p.status, p.start_date, p.end_date) for p in statuses]
    assignments = db.execute(
        select(UnitAssignment, BargainingUnit.code)
        .join(BargainingUnit, BargainingUnit.id == UnitAssignment.unit_id)
        .where(UnitAssignment.member_id == member.id)
    )
    rows += [HistoryRow("unit", code, a.start_date, a.end_date) for a, code in assignments.all()]
    return sorted(rows, key=lambda r: (r.start_date, r.what), reverse=True)


def imports_touching(
    db: Session, member: Member, limit: int = 20
) -> list[tuple[RosterImport, str]]:
    """The roster imports that added, changed or moved this member, newest first."""
    stmt = (
        select(RosterImport, ImportTouch.change)
        .join(ImportTouch, ImportTouch.roster_import_id == RosterImport.id)
        .where(ImportTouch.member_id == member.id)
        .order_by(RosterImport.created_at.desc())
        .limit(limit)
    )
    touched = [(record, change) for record, change in db.execute(stmt).all()]
    if member.added_by_import_id is not None:
        added = db.get_one(RosterImport, member.added_by_import_id)
        touched = sorted([*touched, (added, "new")], key=lambda t: t[0].created_at, reverse=True)
    return touched[:limit]
