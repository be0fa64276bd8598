"""Rate-limit counters kept in the database, so every app process sees the same count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ratify.db import Base, UUIDPrimaryKey, utcnow


class ThrottleHit(UUIDPrimaryKey, Base):
    """One counted event (a failed login, say) under a keyed digest of what it is counted by."""

    __tablename__ = "throttle_hits"
    __table_args__ = (Index("ix_throttle_hits_key_at", "key", "at"),)

    key: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(default=utcnow)
