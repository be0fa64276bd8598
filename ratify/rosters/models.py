"""Bargaining units and the members on a union's roster, with dated history."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ratify.db import Base, UUIDPrimaryKey, utcnow


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


class BargainingUnit(UUIDPrimaryKey, Base):
    __tablename__ = "bargaining_units"
    __table_args__ = (UniqueConstraint("organization_id", "code"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    code: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    employer: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MembershipStatus(StrEnum):
    MEMBER = "member"
    FEE_PAYER = "fee_payer"
    NON_MEMBER = "non_member"


class EmploymentStatus(StrEnum):
    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    LAID_OFF = "laid_off"
    TERMINATED = "terminated"


class StatusKind(StrEnum):
    MEMBERSHIP = "membership"
    EMPLOYMENT = "employment"


class Member(UUIDPrimaryKey, Base):
    """A person on a union's roster, keyed by the union's member number. Nobody is deleted:
    leaving ends a unit assignment, and status changes are dated periods."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("organization_id", "member_number"),
        Index("ix_members_organization_id_sort_name", "organization_id", "sort_name"),
        Index("ix_members_organization_id_email", "organization_id", "email"),
        Index("ix_members_organization_id_phone", "organization_id", "phone"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    member_number: Mapped[str] = mapped_column(String(50))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # "last first", lower-cased: what name search and ordering use (with an index).
    sort_name: Mapped[str] = mapped_column(String(201))
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")  # E.164
    preferred_language: Mapped[str] = mapped_column(String(10), default="")
    address_line1: Mapped[str] = mapped_column(String(200), default="")
    address_line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    worksite: Mapped[str] = mapped_column(String(200), default="")
    classification: Mapped[str] = mapped_column(String(200), default="")
    hire_date: Mapped[date | None]
    join_date: Mapped[date | None]
    birth_date: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The roster import that added the member (its later changes are ImportTouch rows): one
    # column rather than a row per member, which a 300,000-member first import would pay for.
    added_by_import_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("roster_imports.id"))


class MemberStatusPeriod(UUIDPrimaryKey, Base):
    """A member's membership or employment status from start_date until end_date (exclusive;
    open when null). "Status on date D" is the period with start <= D < end."""

    __tablename__ = "member_status_periods"
    __table_args__ = (Index("ix_member_status_periods_member_kind", "member_id", "kind"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    kind: Mapped[StatusKind] = mapped_column(
        Enum(StatusKind, native_enum=False, length=20, values_callable=_values)
    )
    status: Mapped[str] = mapped_column(String(20))
    start_date: Mapped[date]
    end_date: Mapped[date | None]


class UnitAssignment(UUIDPrimaryKey, Base):
    """A member in a bargaining unit from start_date until end_date (exclusive; open when null)."""

    __tablename__ = "unit_assignments"
    __table_args__ = (Index("ix_unit_assignments_unit_dates", "unit_id", "start_date", "end_date"),)

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bargaining_units.id"))
    start_date: Mapped[date]
    end_date: Mapped[date | None]


class ImportScope(StrEnum):
    UNIT = "unit"  # one unit: members of it not in the file are leaving
    UNIT_COLUMN = "unit_column"  # the units named in a column: leaving computed for those
    UPDATE_ONLY = "update_only"  # adds and changes; never marks anyone as leaving
    DUES = "dues"  # a dues remittance (check-off) file


class UploadState(StrEnum):
    READY = "ready"  # uploaded: columns can be mapped; small files are previewed at once
    CHECKING = "checking"  # a worker is checking every row
    CHECKED = "checked"  # the preview is in ``summary``
    APPLYING = "applying"  # a worker is applying it
    APPLIED = "applied"
    FAILED = "failed"  # ``problem`` says why


class RosterImport(UUIDPrimaryKey, Base):
    """One roster file applied to the roster: who, when, which file, what it did."""

    __tablename__ = "roster_imports"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the file's bytes
    scope: Mapped[ImportScope] = mapped_column(
        Enum(ImportScope, native_enum=False, length=20, values_callable=_values)
    )
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bargaining_units.id"))
    effective_date: Mapped[date]
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    actor_label: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RosterUpload(UUIDPrimaryKey, Base):
    """A roster file uploaded through the pages, kept (in the database, so any app process can
    continue the steps) from upload through mapping and preview until it is applied."""

    __tablename__ = "roster_uploads"

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100), default="")
    scope: Mapped[ImportScope] = mapped_column(
        Enum(ImportScope, native_enum=False, length=20, values_callable=_values)
    )
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bargaining_units.id"))
    effective_date: Mapped[date]
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    roster_import_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("roster_imports.id"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A large file is checked and applied by ``ratify worker``; its page follows these.
    state: Mapped[UploadState] = mapped_column(
        Enum(UploadState, native_enum=False, length=20, values_callable=_values),
        default=UploadState.READY,
        server_default=UploadState.READY.value,
    )
    row_count: Mapped[int] = mapped_column(default=0, server_default="0")
    rows_done: Mapped[int] = mapped_column(default=0, server_default="0")
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the checked preview
    problem: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {message, params}
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"))


class ColumnMapping(UUIDPrimaryKey, Base):
    """The column mapping last used for a source (a payroll export, say), offered again."""

    __tablename__ = "column_mappings"
    __table_args__ = (UniqueConstraint("organization_id", "source"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"))
    source: Mapped[str] = mapped_column(String(100))
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DuesPayment(UUIDPrimaryKey, Base):
    """Dues for one month (``period``: the month's first day), from a remittance (check-off)
    import or a manual correction. Good standing is computed from these, never stored."""

    __tablename__ = "dues_payments"
    __table_args__ = (Index("ix_dues_payments_member_period", "member_id", "period"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"))
    period: Mapped[date]
    amount_cents: Mapped[int]
    received_on: Mapped[date]
    source: Mapped[str] = mapped_column(String(255))  # a file name, or "correction"
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportTouch(UUIDPrimaryKey, Base):
    """A member an import added, changed or took out of a unit (for the member's page)."""

    __tablename__ = "roster_import_members"

    roster_import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roster_imports.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    change: Mapped[str] = mapped_column(String(10))  # "new", "changed" or "leaving"
