"""Secrets in one place: password hashing, signed values (one salt per purpose), random tokens.

Nothing here touches the database or HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ratify.settings import Settings

# Signed-value purposes: a value signed for one purpose never verifies for another.
SESSION_SALT = "ratify.staff-session"
CSRF_SALT = "ratify.csrf"
VOTER_SESSION_SALT = "ratify.voter-session"


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def verify_password(hasher: PasswordHasher, stored_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account has a password, so timing tells nothing."""
    if not stored_hash:
        _burn(hasher, password)
        return False
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASHES: dict[tuple[int, int, int], str] = {}


def _burn(hasher: PasswordHasher, password: str) -> None:
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher.hash(secrets.token_urlsafe(16))
    with contextlib.suppress(VerificationError):
        hasher.verify(_DUMMY_HASHES[key], password)


def new_token() -> str:
    """256 random bits, URL-safe: for one-time links and session ids."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a one-time token: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_digest(secret_key: str, purpose: str, value: str) -> str:
    """An HMAC of ``value`` under a key derived for ``purpose`` (pseudonyms, throttle keys)."""
    key = hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class Signer:
    """Signed, timestamped values for one purpose."""

    def __init__(self, secret_key: str, salt: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=salt)

    def dumps(self, value: Any) -> str:
        return str(self._serializer.dumps(value))

    def loads(self, signed: str, max_age: int) -> Any | None:
        try:
            return self._serializer.loads(signed, max_age=max_age)
        except BadSignature:
            return None


def csrf_token_for(secret_key: str, csrf_cookie: str) -> str:
    """The form token that goes with a CSRF cookie (double submit, bound by HMAC)."""
    return keyed_digest(secret_key, CSRF_SALT, csrf_cookie)


def csrf_token_matches(secret_key: str, csrf_cookie: str, submitted: str) -> bool:
    return hmac.compare_digest(csrf_token_for(secret_key, csrf_cookie), submitted)
