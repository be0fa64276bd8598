"""A union's roster: bargaining units (every change audited) and members with dated
membership, employment and unit history."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.contact import checked_contact
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, NotFound
from ratify.orgs.models import Organization, OrgKind
from ratify.rosters.models import (
    BargainingUnit,
    EmploymentStatus,
    Member,
    MembershipStatus,
    MemberStatusPeriod,
    StatusKind,
    UnitAssignment,
)

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")
LIMITS = {
    "name": (200, N_("Use at most 200 characters.")),
    "employer": (200, N_("Use at most 200 characters.")),
    "description": (5000, N_("Use at most 5000 characters.")),
}


@dataclass(frozen=True)
class UnitFields:
    code: str
    name: str
    employer: str
    description: str


class UnitInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


def require_union(org: Organization) -> None:
    """Bargaining units belong to unions; a community organization has none to show."""
    if org.kind != OrgKind.UNION:
        raise NotFound()


def check_unit_fields(fields: UnitFields) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not CODE_RE.match(fields.code):
        errors["code"] = N_(
            "Use up to 30 letters, digits, dots, dashes or underscores, starting with a letter "
            "or digit (for example RN or TECH-2)."
        )
    if not fields.name:
        errors["name"] = N_("Enter the unit's name.")
    for field, (limit, message) in LIMITS.items():
        if len(getattr(fields, field)) > limit:
            errors[field] = message
    return errors


def _code_taken(db: Session, org: Organization, code: str, other_than: uuid.UUID | None) -> bool:
    stmt = select(BargainingUnit.id).where(
        BargainingUnit.organization_id == org.id, BargainingUnit.code == code
    )
    if other_than is not None:
        stmt = stmt.where(BargainingUnit.id != other_than)
    return db.execute(stmt).first() is not None


def _check(db: Session, org: Organization, fields: UnitFields, unit_id: uuid.UUID | None) -> None:
    """Every problem at once, the duplicate code included."""
    errors = check_unit_fields(fields)
    if "code" not in errors and _code_taken(db, org, fields.code, unit_id):
        errors["code"] = N_("Another unit already uses this code.")
    if errors:
        raise UnitInvalid(errors)


def list_units(db: Session, org: Organization, *, archived: bool = False) -> list[BargainingUnit]:
    stmt = (
        select(BargainingUnit)
        .where(BargainingUnit.organization_id == org.id)
        .where(
            BargainingUnit.archived_at.is_not(None)
            if archived
            else BargainingUnit.archived_at.is_(None)
        )
        .order_by(BargainingUnit.code)
    )
    return list(db.scalars(stmt))


def get_unit(db: Session, org: Organization, unit_id: uuid.UUID) -> BargainingUnit:
    """A unit of *this* organization; another organization's is 404."""
    stmt = select(BargainingUnit).where(
        BargainingUnit.id == unit_id, BargainingUnit.organization_id == org.id
    )
    unit = db.execute(stmt).scalar_one_or_none()
    if unit is None:
        raise NotFound()
    return unit


def create_unit(
    db: Session, org: Organization, *, actor: StaffUser | None, fields: UnitFields
) -> BargainingUnit:
    require_union(org)
    _check(db, org, fields, None)
    unit = BargainingUnit(
        organization_id=org.id,
        code=fields.code,
        name=fields.name,
        employer=fields.employer,
        description=fields.description,
    )
    db.add(unit)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="unit.created",
        object_type="bargaining_unit",
        object_id=unit.id,
        data={"code": unit.code, "name": unit.name},
        actor_label=None if actor else "cli",
    )
    return unit


def update_unit(
    db: Session, org: Organization, unit: BargainingUnit, *, actor: StaffUser, fields: UnitFields
) -> dict[str, dict[str, str]]:
    """Change a unit; the audit event keeps each field's before and after."""
    _check(db, org, fields, unit.id)
    changes: dict[str, dict[str, str]] = {}
    for field in ("code", "name", "employer", "description"):
        before, after = getattr(unit, field), getattr(fields, field)
        if before != after:
            changes[field] = {"from": before, "to": after}
            setattr(unit, field, after)
    if changes:
        db.flush()
        audit.record(
            db,
            organization=org,
            actor=actor,
            action="unit.updated",
            object_type="bargaining_unit",
            object_id=unit.id,
            data={"changes": changes},
        )
    return changes


def set_archived(
    db: Session, org: Organization, unit: BargainingUnit, *, actor: StaffUser, archived: bool
) -> None:
    """Archive (or restore) a unit: it leaves the lists, and its history stays. Asking for the
    state it is already in (a second click) changes and records nothing."""
    if (unit.archived_at is not None) == archived:
        return
    unit.archived_at = utcnow() if archived else None
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="unit.archived" if archived else "unit.restored",
        object_type="bargaining_unit",
        object_id=unit.id,
        data={"code": unit.code},
    )


# -- members ----------------------------------------------------------------------------------

MEMBER_TEXT_LIMITS = {
    "member_number": 50,
    "first_name": 100,
    "last_name": 100,
    "preferred_language": 10,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "region": 100,
    "postal_code": 20,
    "country": 2,
    "worksite": 200,
    "classification": 200,
}


@dataclass(frozen=True, slots=True)
class MemberFields:
    """A member's details as given (by an import row, the API or a form)."""

    member_number: str
    first_name: str
    last_name: str
    email: str = ""
    phone: str = ""
    preferred_language: str = ""
    address_line1: str = ""
    address_line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    worksite: str = ""
    classification: str = ""
    hire_date: date | None = None
    join_date: date | None = None
    birth_date: date | None = None


class MemberInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


def clean_member_fields(
    fields: MemberFields, phone_region: str, *, require_name: bool = True
) -> MemberFields:
    """The fields checked and normalized (email lower-cased, phone in E.164), or
    ``MemberInvalid`` naming every problem. (``require_name=False``: an update of a known
    member that does not give names keeps the stored ones.)"""
    errors: dict[str, str] = {}
    text = {name: getattr(fields, name).strip() for name in MEMBER_TEXT_LIMITS}
    for name, limit in MEMBER_TEXT_LIMITS.items():
        if len(text[name]) > limit:
            errors[name] = N_("This is too long.")
    if not text["member_number"]:
        errors["member_number"] = N_("Every member needs a member number.")
    if require_name and not text["first_name"] and not text["last_name"]:
        errors["last_name"] = N_("Every member needs a name.")
    email, phone = checked_contact(fields.email, fields.phone, phone_region, errors)
    if errors:
        raise MemberInvalid(errors)
    text["country"] = text["country"].upper()
    text["email"], text["phone"] = email, phone
    return MemberFields(
        **text,
        hire_date=fields.hire_date,
        join_date=fields.join_date,
        birth_date=fields.birth_date,
    )


def sort_name(first_name: str, last_name: str) -> str:
    return f"{last_name} {first_name}".strip().lower()


def add_member(
    db: Session,
    org: Organization,
    fields: MemberFields,
    *,
    phone_region: str,
    effective: date,
    membership: MembershipStatus,
    employment: EmploymentStatus,
    units: list[BargainingUnit],
) -> Member:
    """A new member with their first status periods and unit assignments from ``effective``.
    Not audited here: the import or form that calls it records one event for what it did."""
    require_union(org)
    fields = clean_member_fields(fields, phone_region)
    taken = db.execute(
        select(Member.id).where(
            Member.organization_id == org.id, Member.member_number == fields.member_number
        )
    ).first()
    if taken:
        raise MemberInvalid({"member_number": N_("Another member has this member number.")})
    member = Member(
        organization_id=org.id,
        sort_name=sort_name(fields.first_name, fields.last_name),
        **{name: getattr(fields, name) for name in MemberFields.__dataclass_fields__},
    )
    db.add(member)
    db.flush()
    set_status(db, member, StatusKind.MEMBERSHIP, membership.value, effective)
    set_status(db, member, StatusKind.EMPLOYMENT, employment.value, effective)
    for unit in units:
        if unit.organization_id != org.id:
            raise NotFound()
        assign_unit(db, member, unit, effective)
    return member


def _open_period(db: Session, member: Member, kind: StatusKind) -> MemberStatusPeriod | None:
    stmt = select(MemberStatusPeriod).where(
        MemberStatusPeriod.member_id == member.id,
        MemberStatusPeriod.kind == kind,
        MemberStatusPeriod.end_date.is_(None),
    )
    return db.execute(stmt).scalar_one_or_none()


def set_status(db: Session, member: Member, kind: StatusKind, status: str, effective: date) -> bool:
    """From ``effective`` on, the member's status of this kind is ``status``: the open period
    ends there and a new one starts. False when nothing changes."""
    allowed = MembershipStatus if kind == StatusKind.MEMBERSHIP else EmploymentStatus
    if status not in {s.value for s in allowed}:
        raise BadRequest(N_("Unknown status: %(status)s."), status=status)
    current = _open_period(db, member, kind)
    if current is not None:
        if current.status == status:
            return False
        if effective < current.start_date:
            raise BadRequest(
                N_("A change cannot take effect before the current status began (%(start)s)."),
                start=current.start_date.isoformat(),
            )
        if effective == current.start_date:
            current.status = status  # a correction on the same day
            db.flush()
            return True
        current.end_date = effective
    db.add(MemberStatusPeriod(member_id=member.id, kind=kind, status=status, start_date=effective))
    db.flush()
    return True


def assign_unit(db: Session, member: Member, unit: BargainingUnit, effective: date) -> bool:
    """The member is in ``unit`` from ``effective`` on. False when already there."""
    stmt = select(UnitAssignment.id).where(
        UnitAssignment.member_id == member.id,
        UnitAssignment.unit_id == unit.id,
        UnitAssignment.end_date.is_(None),
    )
    if db.execute(stmt).first():
        return False
    db.add(UnitAssignment(member_id=member.id, unit_id=unit.id, start_date=effective))
    db.flush()
    return True


def leave_unit(db: Session, member: Member, unit: BargainingUnit, effective: date) -> bool:
    """The member is no longer in ``unit`` from ``effective`` on (nobody is deleted). False
    when they were not in it."""
    stmt = select(UnitAssignment).where(
        UnitAssignment.member_id == member.id,
        UnitAssignment.unit_id == unit.id,
        UnitAssignment.end_date.is_(None),
    )
    assignment = db.execute(stmt).scalar_one_or_none()
    if assignment is None:
        return False
    if effective < assignment.start_date:
        raise BadRequest(
            N_("A change cannot take effect before the current status began (%(start)s)."),
            start=assignment.start_date.isoformat(),
        )
    assignment.end_date = effective
    db.flush()
    return True
