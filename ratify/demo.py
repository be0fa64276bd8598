"""Demo data for `make run`: a union with two bargaining units, a community organization and
one staff login per role. Loaded once; later runs only print the logins again."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts import services as accounts
from ratify.authz import Role
from ratify.orgs.models import Organization, OrgKind
from ratify.orgs.services import create_organization
from ratify.rosters.services import UnitFields, create_unit
from ratify.security import password_hasher
from ratify.settings import Settings

UNION_SLUG = "riverside-nurses"
COMMUNITY_SLUG = "eastside-tenants"


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str
    where: str


DEMO_LOGINS = [
    DemoLogin("admin", "admin@demo.example", "demo-admin-pass", "both organizations"),
    DemoLogin("staff", "staff@demo.example", "demo-staff-pass", "Riverside Nurses United"),
    DemoLogin(
        "committee", "committee@demo.example", "demo-committee-pass", "Riverside Nurses United"
    ),
    DemoLogin("observer", "observer@demo.example", "demo-observer-pass", "Riverside Nurses United"),
]


def load_demo(db: Session, settings: Settings) -> tuple[bool, list[DemoLogin]]:
    existing = db.execute(select(Organization).where(Organization.slug == UNION_SLUG)).first()
    if existing:
        return False, DEMO_LOGINS
    hasher = password_hasher(settings)
    union = create_organization(
        db,
        slug=UNION_SLUG,
        name="Riverside Nurses United",
        kind=OrgKind.UNION,
        timezone="America/Chicago",
    )
    for code, name, employer in (
        ("RN", "Registered Nurses", "Riverside General Hospital"),
        ("TECH", "Technical Unit", "Riverside General Hospital"),
    ):
        create_unit(
            db,
            union,
            actor=None,
            fields=UnitFields(code=code, name=name, employer=employer, description=""),
        )
    community = create_organization(
        db,
        slug=COMMUNITY_SLUG,
        name="Eastside Tenants Association",
        kind=OrgKind.COMMUNITY,
        default_language="es",
        timezone="America/Los_Angeles",
    )
    for login in DEMO_LOGINS:
        name = f"Demo {login.role.capitalize()}"
        added = accounts.add_staff(
            db,
            union,
            actor=None,
            email=login.email,
            name=name,
            role=Role(login.role),
            token_max_age=settings.password_token_max_age,
        )
        accounts.set_password(db, hasher, added.role.user, login.password)
        if login.role == "admin":
            accounts.add_staff(
                db,
                community,
                actor=None,
                email=login.email,
                name=name,
                role=Role.ADMIN,
                token_max_age=settings.password_token_max_age,
            )
    db.flush()
    return True, DEMO_LOGINS
