"""Small helpers shared by the community tests: a community organization, a leader in it,
and a constituency row made directly through the model."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.authz import Role
from ratify.community.models import Constituency
from ratify.orgs.models import Organization, OrgKind
from tests.factories import make_org, make_user


def make_community(db: Session, *, slug: str | None = None) -> Organization:
    return make_org(db, kind=OrgKind.COMMUNITY, slug=slug)


def make_leader(db: Session, org: Organization, role: Role = Role.STAFF) -> StaffUser:
    """A leader is an admin or staff member of the organization (DESIGN.md §3)."""
    return make_user(db, org, role)


def make_constituency(db: Session, org: Organization, **values: Any) -> Constituency:
    """A constituency with two area and two relationship choices, approval required and
    sign-up open; any column can be given instead."""
    fields: dict[str, Any] = {
        "name": f"Eastside tenants {uuid.uuid4().hex[:6]}",
        "description": "Tenants of the Eastside buildings",
        "area_choices": ["12 Elm St", "3 Oak Ave"],
        "relationship_choices": ["tenant", "worker"],
        "criteria": {},
        "approval_required": True,
        "signup_code": uuid.uuid4().hex[:16],
        "signup_open": True,
        "consent_text": "",
    }
    fields.update(values)
    constituency = Constituency(organization_id=org.id, **fields)
    db.add(constituency)
    db.flush()
    return constituency
