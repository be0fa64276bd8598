"""Counting events per key over a sliding window, in the database (shared by all processes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ratify.db import utcnow
from ratify.security import keyed_digest
from ratify.throttle.models import ThrottleHit


def throttle_key(secret_key: str, scope: str, value: str) -> str:
    """Keys are keyed digests: the table never holds an email or a client address."""
    return keyed_digest(secret_key, "throttle", f"{scope}:{value}")[:64]


def count_hits(db: Session, key: str, window: timedelta, now: datetime | None = None) -> int:
    since = (now or utcnow()) - window
    stmt = select(func.count()).where(ThrottleHit.key == key, ThrottleHit.at > since)
    return db.execute(stmt).scalar_one()


def add_hit(db: Session, key: str, now: datetime | None = None) -> None:
    db.add(ThrottleHit(key=key, at=now or utcnow()))
    db.flush()


def clear_hits(db: Session, key: str) -> None:
    db.execute(delete(ThrottleHit).where(ThrottleHit.key == key))


def purge_expired(db: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Worker tick: drop hits no window looks back to."""
    result = db.execute(delete(ThrottleHit).where(ThrottleHit.at < (now or utcnow()) - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
