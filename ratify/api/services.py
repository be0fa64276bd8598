"""API tokens (made by admins, shown once, kept as a digest) and the roster work the API does
that the pages do not: batches of members upserted through the import pipeline, and imports
applied in a token's name."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ratify.accounts.models import StaffUser
from ratify.api.models import ApiToken
from ratify.audit import services as audit
from ratify.authz import Role
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, NotFound
from ratify.orgs.models import Organization
from ratify.rosters import imports
from ratify.rosters.models import ImportScope, RosterImport
from ratify.security import token_digest

SECRET_PREFIX = "rat_"  # noqa: S105 (a marker, not a secret: what a scanner can look for)
SHOWN_PREFIX = 12  # characters of the secret kept to tell tokens apart on the admin page
NAME_MAX = 100
# A token acts for a program, never as an administrator: it cannot manage staff or tokens.
GRANTABLE_ROLES = (Role.STAFF, Role.COMMITTEE, Role.OBSERVER)
# Writing last_used_at on every call would make every read a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class TokenInvalid(BadRequest):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown to the admin once, then gone: only its digest is stored


def create_token(
    db: Session, org: Organization, *, actor: StaffUser, name: str, role: Role | None
) -> NewToken:
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = N_("Name the token after the program that will use it.")
    elif len(name) > NAME_MAX:
        errors["name"] = N_("Use at most 100 characters.")
    if role not in GRANTABLE_ROLES:
        errors["role"] = N_("Choose the role the token acts with.")
    if errors:
        raise TokenInvalid(errors)
    assert role is not None
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        organization_id=org.id,
        name=name,
        role=role,
        token_hash=token_digest(secret),
        prefix=secret[:SHOWN_PREFIX],
        created_by_id=actor.id,
    )
    db.add(token)
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="api_token.created",
        object_type="api_token",
        object_id=token.id,
        data={"token_name": token.name, "role": role.value, "prefix": token.prefix},
    )
    return NewToken(token, secret)


def list_tokens(db: Session, org: Organization) -> list[ApiToken]:
    stmt = (
        select(ApiToken)
        .where(ApiToken.organization_id == org.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
    )
    return list(db.scalars(stmt))


def get_token(db: Session, org: Organization, token_id: uuid.UUID) -> ApiToken:
    """A token of *this* organization; another organization's is 404."""
    stmt = select(ApiToken).where(ApiToken.id == token_id, ApiToken.organization_id == org.id)
    token = db.execute(stmt).scalar_one_or_none()
    if token is None:
        raise NotFound()
    return token


def revoke_token(db: Session, org: Organization, token: ApiToken, *, actor: StaffUser) -> None:
    """From now on the token is refused. Revoking it again (a second click) does nothing."""
    if token.revoked_at is not None:
        return
    token.revoked_at = utcnow()
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="api_token.revoked",
        object_type="api_token",
        object_id=token.id,
        data={"token_name": token.name, "prefix": token.prefix},
    )


def authenticate(db: Session, secret: str) -> ApiToken | None:
    """The live token with this secret, or None (unknown, malformed or revoked). The lookup is
    by digest, so the secret never reaches a query or the database."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    token = db.execute(
        select(ApiToken).where(ApiToken.token_hash == token_digest(secret))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        token.last_used_at = now
        db.flush()
    return token


def get_live_token(db: Session, token_id: uuid.UUID) -> ApiToken | None:
    token = db.get(ApiToken, token_id)
    return token if token is not None and token.revoked_at is None else None


def actor_label(token: ApiToken) -> str:
    """Who the audit log and import history name for what a token did."""
    return f"api:{token.prefix} ({token.name})"[:254]


# -- roster work in a token's name ---------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    preview: imports.Preview
    record: RosterImport | None  # None when the batch changed nothing (nothing is recorded)


class BatchInvalid(BadRequest):
    """Rows of a batch that do not pass the import checks: nothing was written."""

    status_code = 422

    def __init__(self, errors: list[tuple[int, str, str]]) -> None:
        super().__init__(
            N_("%(count)s members have errors: nothing was changed."),
            count=len({index for index, _, _ in errors}),
        )
        self.errors = errors  # (index in the batch, field, message)


def upsert_batch(
    db: Session,
    org: Organization,
    token: ApiToken,
    rows: list[dict[str, str]],
    *,
    effective: date,
    phone_region: str,
) -> BatchResult:
    """Add or update members by member number, exactly as an update-only roster file would be:
    the same checks on every row, all or nothing, recorded in the import history. Every row
    gives the same fields (the columns of the table); a field no row gives changes nothing."""
    headers = sorted({name for row in rows for name in row})
    if "member_number" not in headers:
        headers.insert(0, "member_number")
    uneven = [
        (index, name, N_("Give the same fields for every member of a batch."))
        for index, row in enumerate(rows)
        for name in headers
        if name not in row
    ]
    if uneven:
        raise BatchInvalid(uneven)
    imports.one_import_at_a_time(db, org)
    # The batch becomes a roster file, so that it passes exactly the checks a file does. Its
    # digest names this batch, not its content alone: a sync that sends the same members
    # again is an ordinary request, not a file imported twice by mistake.
    stamp = f"{token.id}:{utcnow().isoformat()}:{uuid.uuid4()}".encode()
    roster = imports.roster_from_table(
        f"API batch ({token.name})"[:255],
        headers,
        [[row[name] for name in headers] for row in rows],
        digest=hashlib.sha256(stamp).hexdigest(),
    )
    result = imports.preview(
        db,
        org,
        roster,
        mapping={name: name for name in headers},
        scope=ImportScope.UPDATE_ONLY,
        unit=None,
        effective=effective,
        phone_region=phone_region,
    )
    if result.errors:
        raise BatchInvalid([(e.row - 2, e.column, e.message) for e in result.errors])
    if not result.new and not result.changed:
        return BatchResult(result, None)
    record = imports.apply(
        db,
        org,
        result,
        actor=None,
        actor_label=actor_label(token),
        phone_region=phone_region,
    )
    return BatchResult(result, record)


def get_import(db: Session, org: Organization, import_id: uuid.UUID) -> RosterImport:
    stmt = select(RosterImport).where(
        RosterImport.id == import_id, RosterImport.organization_id == org.id
    )
    record = db.execute(stmt).scalar_one_or_none()
    if record is None:
        raise NotFound()
    return record
