"""Staff accounts: who may sign in, with which role where, and how sessions end."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, joinedload

from ratify.accounts.models import PasswordToken, PasswordTokenPurpose, StaffRole, StaffUser
from ratify.audit import services as audit
from ratify.authz import Role
from ratify.db import utcnow
from ratify.errors import N_, BadRequest, Conflict, NotFound, TooManyRequests
from ratify.orgs.models import Organization
from ratify.security import new_token, token_digest, verify_password
from ratify.settings import Settings
from ratify.throttle import services as throttle

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


class InvalidCredentials(BadRequest):
    status_code = 401
    default_message = N_("The email or password is not right. Check both and try again.")


class FormInvalid(BadRequest):
    """Field-level problems; the view shows each next to its field and keeps what was typed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(N_("Some fields need correcting."))
        self.errors = errors


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str | None:
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        return N_("Enter an email address such as name@example.org.")
    return None


def check_new_password(password: str, confirm: str, email: str) -> dict[str, str]:
    errors = {}
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = N_("Use at least 10 characters.")
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["password"] = N_("Use at most 256 characters.")
    elif password.strip().lower() == email.lower():
        errors["password"] = N_("Your password must not be your email address.")
    if password != confirm:
        errors["confirm"] = N_("The two passwords are not the same.")
    return errors


def get_user_by_email(db: Session, email: str) -> StaffUser | None:
    stmt = select(StaffUser).where(StaffUser.email == normalize_email(email))
    return db.execute(stmt).scalar_one_or_none()


def create_user(db: Session, *, email: str, name: str) -> StaffUser:
    email = normalize_email(email)
    errors = {}
    if problem := check_email(email):
        errors["email"] = problem
    if not name.strip():
        errors["name"] = N_("Enter the person's name.")
    elif len(name.strip()) > 200:
        errors["name"] = N_("Use at most 200 characters.")
    if errors:
        raise FormInvalid(errors)
    if get_user_by_email(db, email):
        raise Conflict(N_("There is already an account for %(email)s."), email=email)
    user = StaffUser(id=uuid.uuid4(), email=email, name=name.strip())
    db.add(user)
    db.flush()
    return user


def set_password(db: Session, hasher: PasswordHasher, user: StaffUser, password: str) -> None:
    """A new password ends every session the user had (their epoch moves on) and voids every
    one-time link still open for the account."""
    user.password_hash = hasher.hash(password)
    user.session_epoch += 1
    void_open_tokens(db, user)
    db.flush()


def void_open_tokens(db: Session, user: StaffUser) -> None:
    db.execute(
        update(PasswordToken)
        .where(PasswordToken.user_id == user.id, PasswordToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def end_all_sessions(db: Session, user: StaffUser) -> None:
    db.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id)
        .values(session_epoch=StaffUser.session_epoch + 1)
        .execution_options(synchronize_session="fetch")
    )


def issue_password_token(
    db: Session, user: StaffUser, purpose: PasswordTokenPurpose, max_age: int
) -> str:
    """A one-time link token. Returned once to be shown or printed; only its digest is kept.
    Any earlier link of the account stops working: only the newest is live."""
    token = new_token()
    _add_password_token(db, user, purpose, max_age, uuid.uuid4(), token)
    return token


def derived_token(secret_key: str, token_id: uuid.UUID) -> str:
    """The secret of a one-time link sent by email: derived from its row's id when the
    message is sent, so the outbox holds no secret (like a voter's link, DESIGN.md §4 rule 4)."""
    mac = hmac.new(secret_key.encode(), b"ratify.password-token" + token_id.bytes, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def issue_emailed_token(
    db: Session, user: StaffUser, purpose: PasswordTokenPurpose, max_age: int, secret_key: str
) -> PasswordToken:
    token_id = uuid.uuid4()
    return _add_password_token(
        db, user, purpose, max_age, token_id, derived_token(secret_key, token_id)
    )


def _add_password_token(
    db: Session,
    user: StaffUser,
    purpose: PasswordTokenPurpose,
    max_age: int,
    token_id: uuid.UUID,
    token: str,
) -> PasswordToken:
    void_open_tokens(db, user)
    now = utcnow()
    row = PasswordToken(
        id=token_id,
        user_id=user.id,
        token_digest=token_digest(token),
        purpose=purpose,
        created_at=now,
        expires_at=now + timedelta(seconds=max_age),
    )
    db.add(row)
    db.flush()
    return row


def find_password_token(db: Session, token: str) -> PasswordToken:
    """The live token, or 404 for a wrong, used or expired one (they all look the same)."""
    stmt = select(PasswordToken).where(PasswordToken.token_digest == token_digest(token))
    found = db.execute(stmt).scalar_one_or_none()
    if found is None or found.used_at is not None or found.expires_at <= utcnow():
        raise NotFound(
            N_("This link has been used or has expired. Ask an administrator for a new one.")
        )
    return found


def account_for_token(db: Session, token: str) -> tuple[PasswordToken, StaffUser]:
    found = find_password_token(db, token)
    return found, db.get_one(StaffUser, found.user_id)


def purge_old_tokens(db: Session, older_than: timedelta) -> None:
    """Worker tick: drop links that expired long ago."""
    db.execute(delete(PasswordToken).where(PasswordToken.expires_at < utcnow() - older_than))


def use_password_token(
    db: Session, hasher: PasswordHasher, token: str, password: str, confirm: str
) -> StaffUser:
    found = find_password_token(db, token)
    user = db.get_one(StaffUser, found.user_id)
    if errors := check_new_password(password, confirm, user.email):
        raise FormInvalid(errors)
    # Conditional update: of two concurrent submissions of one link, only one wins.
    claimed = db.execute(
        update(PasswordToken)
        .where(PasswordToken.id == found.id, PasswordToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise NotFound(N_("This link has been used or has expired."))
    set_password(db, hasher, user, password)
    for org in organizations_of(db, user):
        audit.record(db, organization=org, actor=user, action="account.password_set")
    return user


@dataclass(frozen=True)
class LoginThrottle:
    account_key: str
    address_key: str


def login_throttle_keys(settings: Settings, email: str, client_address: str) -> LoginThrottle:
    return LoginThrottle(
        account_key=throttle.throttle_key(
            settings.secret_key, "login-account", normalize_email(email)
        ),
        address_key=throttle.throttle_key(settings.secret_key, "login-address", client_address),
    )


def authenticate(
    db: Session,
    settings: Settings,
    hasher: PasswordHasher,
    *,
    email: str,
    password: str,
    client_address: str,
) -> StaffUser:
    """Check a login. Failures are counted per account and per client address; past the limit
    the attempt is refused before the password is even checked."""
    keys = login_throttle_keys(settings, email, client_address)
    window = timedelta(seconds=settings.login_throttle_window)
    throttle.serialize(db, keys.account_key, keys.address_key)
    if (
        throttle.count_hits(db, keys.account_key, window) >= settings.login_max_failures_per_account
        or throttle.count_hits(db, keys.address_key, window)
        >= settings.login_max_failures_per_address
    ):
        raise TooManyRequests(
            N_("Too many failed attempts. Try again in %(minutes)s min."),
            minutes=max(1, settings.login_throttle_window // 60),
        )
    user = get_user_by_email(db, email)
    ok = verify_password(hasher, user.password_hash if user else None, password)
    if not ok or user is None:
        throttle.add_hit(db, keys.account_key)
        throttle.add_hit(db, keys.address_key)
        if user is not None:
            for org in organizations_of(db, user):
                audit.record(db, organization=org, actor=user, action="account.login_failed")
        raise InvalidCredentials()
    throttle.clear_hits(db, keys.account_key)
    assert user.password_hash is not None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.last_login_at = utcnow()
    db.flush()
    for org in organizations_of(db, user):
        audit.record(db, organization=org, actor=user, action="account.login")
    return user


def change_password(
    db: Session,
    hasher: PasswordHasher,
    user: StaffUser,
    *,
    current: str,
    new: str,
    confirm: str,
) -> None:
    errors = check_new_password(new, confirm, user.email)
    if not verify_password(hasher, user.password_hash, current):
        errors["current"] = N_("That is not your current password.")
    if errors:
        raise FormInvalid(errors)
    set_password(db, hasher, user, new)
    for org in organizations_of(db, user):
        audit.record(db, organization=org, actor=user, action="account.password_changed")


def logout(db: Session, user: StaffUser) -> None:
    """Signing out ends the user's sessions on every device: a copied cookie dies with it."""
    end_all_sessions(db, user)
    for org in organizations_of(db, user):
        audit.record(db, organization=org, actor=user, action="account.logout")


def session_user(db: Session, user_id: uuid.UUID, epoch: int) -> StaffUser | None:
    """The user a session cookie names, if that session has not been ended since."""
    user = db.get(StaffUser, user_id)
    if user is None or user.session_epoch != epoch or user.password_hash is None:
        return None
    return user


def organizations_of(db: Session, user: StaffUser) -> list[Organization]:
    stmt = (
        select(Organization)
        .join(StaffRole, StaffRole.organization_id == Organization.id)
        .where(StaffRole.user_id == user.id)
        .order_by(Organization.name)
    )
    return list(db.scalars(stmt))


def memberships(db: Session, user: StaffUser) -> list[tuple[Organization, Role]]:
    stmt = (
        select(Organization, StaffRole.role)
        .join(StaffRole, StaffRole.organization_id == Organization.id)
        .where(StaffRole.user_id == user.id)
        .order_by(Organization.name)
    )
    return [(org, role) for org, role in db.execute(stmt).all()]


def role_in(db: Session, user: StaffUser, org: Organization) -> Role | None:
    stmt = select(StaffRole.role).where(
        StaffRole.user_id == user.id, StaffRole.organization_id == org.id
    )
    return db.execute(stmt).scalar_one_or_none()


def list_staff(db: Session, org: Organization) -> list[StaffRole]:
    stmt = (
        select(StaffRole)
        .where(StaffRole.organization_id == org.id)
        .options(joinedload(StaffRole.user))
        .join(StaffUser, StaffUser.id == StaffRole.user_id)
        .order_by(StaffUser.name)
    )
    return list(db.scalars(stmt))


def get_staff_role(db: Session, org: Organization, role_id: uuid.UUID) -> StaffRole:
    """A staff role of *this* organization; anyone else's is 404."""
    stmt = (
        select(StaffRole)
        .where(StaffRole.id == role_id, StaffRole.organization_id == org.id)
        .options(joinedload(StaffRole.user))
    )
    found = db.execute(stmt).scalar_one_or_none()
    if found is None:
        raise NotFound()
    return found


@dataclass(frozen=True)
class AddedStaff:
    role: StaffRole
    set_password_token: str | None


def add_staff(
    db: Session,
    org: Organization,
    *,
    actor: StaffUser | None,
    email: str,
    name: str,
    role: Role,
    token_max_age: int,
) -> AddedStaff:
    """Give someone a role here, creating their account if needed. A new account (or one that
    never set a password) gets a one-time set-password link."""
    user = get_user_by_email(db, email)
    if user is None:
        user = create_user(db, email=email, name=name)
    elif role_in(db, user, org) is not None:
        raise Conflict(N_("%(email)s already has a role here."), email=user.email)
    staff_role = StaffRole(user_id=user.id, organization_id=org.id, role=role)
    db.add(staff_role)
    db.flush()
    token = None
    if user.password_hash is None:
        token = issue_password_token(db, user, PasswordTokenPurpose.SET, token_max_age)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="staff.added",
        object_type="staff_user",
        object_id=user.id,
        data={"email": user.email, "role": role.value},
        actor_label=None if actor else "cli",
    )
    db.refresh(staff_role, attribute_names=["user"])
    return AddedStaff(staff_role, token)


def _admins_left(db: Session, org: Organization, without: StaffRole) -> int:
    stmt = select(func.count()).where(
        StaffRole.organization_id == org.id,
        StaffRole.role == Role.ADMIN,
        StaffRole.id != without.id,
    )
    return db.execute(stmt).scalar_one()


def change_role(
    db: Session, org: Organization, *, actor: StaffUser, staff_role: StaffRole, role: Role
) -> None:
    if staff_role.role == role:
        return
    if staff_role.role == Role.ADMIN and _admins_left(db, org, staff_role) == 0:
        raise Conflict(N_("An organization needs at least one administrator."))
    before = staff_role.role
    staff_role.role = role
    db.flush()
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="staff.role_changed",
        object_type="staff_user",
        object_id=staff_role.user_id,
        data={"email": staff_role.user.email, "from": before.value, "to": role.value},
    )


def remove_staff(
    db: Session, org: Organization, *, actor: StaffUser, staff_role: StaffRole
) -> None:
    """Take the role away. It stops working at once (roles are read on every request); a
    person left with no role anywhere also has every session ended. Someone who keeps roles
    elsewhere stays signed in there: one organization cannot sign people out of another."""
    if staff_role.role == Role.ADMIN and _admins_left(db, org, staff_role) == 0:
        raise Conflict(N_("An organization needs at least one administrator."))
    user = staff_role.user
    db.delete(staff_role)
    db.flush()
    if not organizations_of(db, user):
        end_all_sessions(db, user)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="staff.removed",
        object_type="staff_user",
        object_id=user.id,
        data={"email": user.email, "role": staff_role.role.value},
    )


def issue_link_for_staff(
    db: Session, org: Organization, *, actor: StaffUser | None, user: StaffUser, max_age: int
) -> str:
    """A new set-password link for someone of this organization who has not chosen a password
    yet (a lost invitation). Never for an account that has one: it may belong to other
    organizations too, and whoever holds the link takes the account over. Forgotten passwords
    are reset by the operator (`ratify reset-password`). Audited."""
    if user.password_hash is not None:
        raise Conflict(
            N_(
                "%(email)s has already set a password. If it is forgotten, the server's operator "
                "can issue a reset link with `ratify reset-password`."
            ),
            email=user.email,
        )
    token = issue_password_token(db, user, PasswordTokenPurpose.SET, max_age)
    audit.record(
        db,
        organization=org,
        actor=actor,
        action="staff.password_link_issued",
        object_type="staff_user",
        object_id=user.id,
        data={"email": user.email, "purpose": PasswordTokenPurpose.SET.value},
        actor_label=None if actor else "cli",
    )
    return token


def issue_reset_link(db: Session, user: StaffUser, max_age: int) -> str:
    """The operator's reset link (`ratify reset-password`), audited in every organization of
    the account."""
    token = issue_password_token(db, user, PasswordTokenPurpose.RESET, max_age)
    for org in organizations_of(db, user):
        audit.record(
            db,
            organization=org,
            actor=None,
            actor_label="cli",
            action="staff.password_link_issued",
            object_type="staff_user",
            object_id=user.id,
            data={"email": user.email, "purpose": PasswordTokenPurpose.RESET.value},
        )
    return token


def set_language(db: Session, user: StaffUser, language: str) -> None:
    user.language = language
    db.flush()


RESET_REQUESTS_PER_ACCOUNT = 3  # emailed reset links per account within the login window


def request_reset_by_email(
    db: Session, settings: Settings, *, email: str, client_address: str
) -> bool:
    """A one-time reset link by email, when an account has this address: True when one was
    queued. Throttled per account and per client address (each request counts, found or not),
    and answered the same either way, so the form tells nobody which addresses have accounts.
    The link's secret is derived when the message is sent (``derived_token``)."""
    from ratify.notices import outbox

    account_key = throttle.throttle_key(
        settings.secret_key, "reset-account", normalize_email(email)
    )
    address_key = throttle.throttle_key(settings.secret_key, "reset-address", client_address)
    window = timedelta(seconds=settings.login_throttle_window)
    throttle.serialize(db, account_key, address_key)
    if (
        throttle.count_hits(db, account_key, window) >= RESET_REQUESTS_PER_ACCOUNT
        or throttle.count_hits(db, address_key, window) >= settings.login_max_failures_per_address
    ):
        raise TooManyRequests(
            N_("Too many requests. Try again in %(minutes)s min."),
            minutes=max(1, settings.login_throttle_window // 60),
        )
    throttle.add_hit(db, account_key)
    throttle.add_hit(db, address_key)
    user = get_user_by_email(db, email)
    if user is None:
        return False
    token = issue_emailed_token(
        db, user, PasswordTokenPurpose.RESET, settings.password_token_max_age, settings.secret_key
    )
    outbox.enqueue_password_reset(db, user, token)
    for org in organizations_of(db, user):
        audit.record(
            db,
            organization=org,
            actor=None,
            actor_label="password reset form",
            action="staff.password_reset_emailed",
            object_type="staff_user",
            object_id=user.id,
            data={"email": user.email},
        )
    return True
