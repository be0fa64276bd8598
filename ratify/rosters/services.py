"""Bargaining units of a union: create, edit, archive. Every change is audited."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, NotFound
from ratify.orgs.models import Organization, OrgKind
from ratify.rosters.models import BargainingUnit

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
