"""The audit log: append-only events, hash-chained per organization (DESIGN.md §4 rule 5)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ratify.db import Base, UUIDPrimaryKey, utcnow


class AuditEvent(UUIDPrimaryKey, Base):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    # "org:<uuid>" for an organization's chain, "system" for events outside any organization.
    chain: Mapped[str] = mapped_column(String(50))
    seq: Mapped[int]
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id"), index=True
    )
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str | None] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(64))
    # A roster member the event concerns: shown pseudonymized to observers.
    member_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # How ``hash`` was computed (audit.services): 2 over keyed commitments of the personal
    # values, so an export that shows only those can be checked; 1 (events written before
    # migration 0015) over the raw values. The server default is for those older rows.
    hash_version: Mapped[int] = mapped_column(default=2, server_default="1")


class AuditHead(Base):
    """The newest event of each chain. Appending updates this row first, which serializes
    concurrent appends to one chain on both engines."""

    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(50), primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    hash: Mapped[str] = mapped_column(String(64))
    # The key of this chain's commitments of personal values (64 hex digits, random): never
    # shown or exported, so a pseudonym in an export cannot be tested against a guess.
    pseudonym_key: Mapped[str] = mapped_column(String(64))
    # The last event hashed at version 1 (0 for a chain begun at version 2): every version-2
    # hash covers it, so an export cannot pass a changed event off as an older one.
    v1_until: Mapped[int] = mapped_column(default=0, server_default="0")
