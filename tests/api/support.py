"""Tokens and roster data for the API tests."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ratify.api import services as tokens
from ratify.authz import Role
from ratify.orgs.models import Organization
from ratify.rosters import services as rosters
from ratify.rosters.models import BargainingUnit, EmploymentStatus, Member, MembershipStatus
from ratify.rosters.services import MemberFields, UnitFields
from tests.factories import make_user


def make_token(db: Session, org: Organization, role: Role = Role.STAFF, client=None) -> str:  # type: ignore[no-untyped-def]
    """A new token's secret; handed to the log check when a client is given."""
    admin = make_user(db, org, Role.ADMIN, password=None)
    secret = tokens.create_token(db, org, actor=admin, name=f"sync {role.value}", role=role).secret
    if client is not None:
        client.ledger.add(secret)
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_unit(db: Session, org: Organization, code: str = "RN") -> BargainingUnit:
    return rosters.create_unit(db, org, actor=None, fields=UnitFields(code, f"Unit {code}", "", ""))


def add_member(  # type: ignore[no-untyped-def]
    db: Session,
    org: Organization,
    number: str,
    last: str,
    *,
    units: list[BargainingUnit],
    membership: MembershipStatus = MembershipStatus.MEMBER,
    employment: EmploymentStatus = EmploymentStatus.ACTIVE,
    **fields,
) -> Member:
    return rosters.add_member(
        db,
        org,
        MemberFields(number, "Pat", last, **fields),
        phone_region="US",
        effective=date(2025, 1, 1),
        membership=membership,
        employment=employment,
        units=units,
    )
