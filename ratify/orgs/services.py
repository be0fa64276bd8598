"""Creating organizations and finding them, always within what the caller may see."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.audit import services as audit
from ratify.errors import N_, BadRequest, Conflict, NotFound
from ratify.orgs.models import Organization, OrgKind
from ratify.settings import LANGUAGES

NAME_MAX = 200
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def org_today(org: Organization) -> date:
    """Today's date where the organization is (its time zone), as its people date things."""
    return datetime.now(ZoneInfo(org.timezone)).date()


def create_organization(
    db: Session,
    *,
    slug: str,
    name: str,
    kind: OrgKind,
    default_language: str = "en",
    timezone: str = "UTC",
    actor: StaffUser | None = None,
) -> Organization:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise BadRequest(
            N_(
                "The short name may hold lowercase letters, digits and dashes "
                "(up to 63 characters)."
            )
        )
    if not name.strip():
        raise BadRequest(N_("The organization needs a name."))
    if len(name.strip()) > NAME_MAX:
        raise BadRequest(N_("Use at most 200 characters."))
    if db.execute(select(Organization.id).where(Organization.slug == slug)).first():
        raise Conflict(
            N_("An organization with the short name %(slug)s already exists."), slug=slug
        )
    org = Organization(
        slug=slug,
        name=name.strip(),
        kind=kind,
        default_language=default_language,
        timezone=timezone,
    )
    db.add(org)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="org.created",
        object_type="organization",
        object_id=org.id,
        data={"slug": slug, "kind": kind.value},
        actor_label=None if actor else "cli",
    )
    return org


def get_by_slug(db: Session, slug: str) -> Organization:
    if not SLUG_RE.match(slug):
        raise NotFound()  # not even asked: it could not be a slug
    org = db.execute(select(Organization).where(Organization.slug == slug)).scalar_one_or_none()
    if org is None:
        raise NotFound()
    return org


def update_settings(
    db: Session,
    org: Organization,
    *,
    actor: StaffUser,
    name: str,
    default_language: str,
    timezone: str,
    dues_grace_months: str | None = None,
    publish_results: bool | None = None,
) -> dict[str, tuple[object, object]]:
    """Change an organization's settings; the audit event keeps each before/after."""
    name = name.strip()
    errors = {}
    if not name:
        errors["name"] = N_("The organization needs a name.")
    elif len(name) > NAME_MAX:
        errors["name"] = N_("Use at most 200 characters.")
    if default_language not in LANGUAGES:
        errors["default_language"] = N_("Choose one of the offered languages.")
    if timezone not in available_timezones():
        errors["timezone"] = N_("Choose a time zone from the list.")
    grace = org.dues_grace_months
    if dues_grace_months is not None:
        try:
            grace = int(dues_grace_months)
            if not 0 <= grace <= 24:
                raise ValueError
        except ValueError:
            errors["dues_grace_months"] = N_("Enter a number of months from 0 to 24.")
    if errors:
        raise SettingsInvalid(errors)
    changes: dict[str, tuple[object, object]] = {}
    for field, new in (
        ("name", name),
        ("default_language", default_language),
        ("timezone", timezone),
        ("dues_grace_months", grace),
        ("publish_results", org.publish_results if publish_results is None else publish_results),
    ):
        old = getattr(org, field)
        if old != new:
            changes[field] = (old, new)
            setattr(org, field, new)
    if changes:
        db.flush()
        audit.record(
            db,
            organization=org,
            actor=actor,
            action="org.settings_changed",
            object_type="organization",
            object_id=org.id,
            data={"changes": {k: {"from": a, "to": b} for k, (a, b) in changes.items()}},
        )
    return changes


class SettingsInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some settings need correcting."))
        self.errors = errors
