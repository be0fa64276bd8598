"""Counting events per key over a sliding window, in the database (shared by all processes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import TextClause, delete, func, select, text
from sqlalchemy.orm import Session

from ratify.db import utcnow
from ratify.security import keyed_digest
from ratify.throttle.models import ThrottleHit

# The longest window any throttle counts over besides logins (sign-ups per address: an hour);
# the worker's purge keeps hits at least this long.
LONGEST_WINDOW = timedelta(hours=1)


def throttle_key(secret_key: str, scope: str, value: str) -> str:
    """Keys are keyed digests: the table never holds an email or a client address."""
    return keyed_digest(secret_key, "throttle", f"{scope}:{value}")[:64]


def serialize(db: Session, *keys: str) -> None:
    """Until this transaction ends, one check-then-count per key at a time, so parallel
    attempts cannot all read the same count. PostgreSQL: transaction-scoped advisory locks,
    taken in a fixed order. SQLite: every write transaction already holds the database's write
    lock from its start (``BEGIN IMMEDIATE``)."""
    if db.get_bind().dialect.name != "postgresql" or not keys:
        return
    ids = sorted({int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True) for key in keys})
    params = {f"k{n}": lock_id for n, lock_id in enumerate(ids)}
    db.connection().execute(_locks(len(ids)), params)  # Core: none of the ORM's execution


@cache
def _locks(count: int) -> TextClause:
    """One statement, one round trip, built once per number of keys (a second factor's
    check takes two on every sign-in): PostgreSQL evaluates a select list left to right."""
    return text("SELECT " + ", ".join(f"pg_advisory_xact_lock(:k{n})" for n in range(count)))


def count_hits(db: Session, key: str, window: timedelta, now: datetime | None = None) -> int:
    since = (now or utcnow()) - window
    stmt = select(func.count()).where(ThrottleHit.key == key, ThrottleHit.at > since)
    return db.execute(stmt).scalar_one()


def add_hit(db: Session, key: str, now: datetime | None = None) -> None:
    db.add(ThrottleHit(key=key, at=now or utcnow()))
    db.flush()


def clear_hits(db: Session, key: str) -> None:
    db.execute(delete(ThrottleHit).where(ThrottleHit.key == key))


def remove_hits(db: Session, key: str, count: int) -> None:
    """Take back the latest ``count`` hits under ``key`` (those a later success explains)."""
    if count <= 0:
        return
    latest = select(ThrottleHit.id).where(ThrottleHit.key == key)
    latest = latest.order_by(ThrottleHit.at.desc()).limit(count)
    db.execute(delete(ThrottleHit).where(ThrottleHit.id.in_(latest.scalar_subquery())))


def purge_expired(db: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Worker tick: drop hits no window looks back to."""
    result = db.execute(delete(ThrottleHit).where(ThrottleHit.at < (now or utcnow()) - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
