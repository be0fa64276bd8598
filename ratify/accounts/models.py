"""Staff users, their roles in organizations, and one-time set-password links."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ratify.authz import Role
from ratify.db import Base, UUIDPrimaryKey, utcnow
from ratify.orgs.models import Organization


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


class StaffUser(UUIDPrimaryKey, Base):
    __tablename__ = "staff_users"

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # Sessions carry the epoch they were issued under; bumping it ends them all at once.
    session_epoch: Mapped[int] = mapped_column(default=0)
    language: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    roles: Mapped[list[StaffRole]] = relationship(back_populates="user", lazy="raise")


class StaffRole(UUIDPrimaryKey, Base):
    __tablename__ = "staff_roles"
    __table_args__ = (UniqueConstraint("user_id", "organization_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"), index=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=_values)
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[StaffUser] = relationship(back_populates="roles", lazy="raise")
    organization: Mapped[Organization] = relationship(lazy="raise")


class PasswordTokenPurpose(StrEnum):
    SET = "set"
    RESET = "reset"


class PasswordToken(UUIDPrimaryKey, Base):
    """A one-time link to set a password. Only a digest of the token is stored."""

    __tablename__ = "password_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[PasswordTokenPurpose] = mapped_column(
        Enum(PasswordTokenPurpose, native_enum=False, length=10, values_callable=_values)
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
