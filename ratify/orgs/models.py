"""Organizations: a union or a community group; each sees only its own data."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, String, false
from sqlalchemy.orm import Mapped, mapped_column

from ratify.db import Base, UUIDPrimaryKey, utcnow


class OrgKind(StrEnum):
    UNION = "union"
    COMMUNITY = "community"


class Organization(UUIDPrimaryKey, Base):
    __tablename__ = "organizations"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrgKind] = mapped_column(
        Enum(OrgKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    default_language: Mapped[str] = mapped_column(String(10), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Good standing: a member is in arrears by at most this many months (unions' usual grace).
    dues_grace_months: Mapped[int] = mapped_column(default=2, server_default="2")
    # Certified results shown to members (through their links) and on a public page.
    publish_results: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
