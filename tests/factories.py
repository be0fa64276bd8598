"""Small typed factories for test data."""

from __future__ import annotations

import itertools

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.accounts.models import StaffUser
from ratify.authz import Role
from ratify.orgs.models import Organization, OrgKind
from ratify.orgs.services import create_organization

_counter = itertools.count(1)
PASSWORD = "correct horse battery"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def make_org(
    db: Session, *, kind: OrgKind = OrgKind.UNION, slug: str | None = None
) -> Organization:
    n = next(_counter)
    return create_organization(db, slug=slug or f"org-{n}", name=f"Organization {n}", kind=kind)


def make_user(
    db: Session,
    org: Organization | None = None,
    role: Role = Role.ADMIN,
    *,
    email: str | None = None,
    password: str | None = PASSWORD,
) -> StaffUser:
    n = next(_counter)
    email = email or f"user{n}@example.org"
    if org is not None:
        user = accounts.add_staff(
            db, org, actor=None, email=email, name=f"User {n}", role=role, token_max_age=3600
        ).role.user
    else:
        user = accounts.create_user(db, email=email, name=f"User {n}")
    if password is not None:
        accounts.set_password(db, FAST_HASHER, user, password)
    db.flush()
    return user


def add_role(db: Session, user: StaffUser, org: Organization, role: Role) -> None:
    accounts.add_staff(
        db, org, actor=None, email=user.email, name=user.name, role=role, token_max_age=3600
    )
