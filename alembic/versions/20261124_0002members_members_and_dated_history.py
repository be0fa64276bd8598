"""members and dated history

Revision ID: 0002members
Revises: 0001foundation
Create Date: 2026-11-24 14:48:04.510488
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002members"
down_revision: str | None = "0001foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "members",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("member_number", sa.String(length=50), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("sort_name", sa.String(length=201), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("preferred_language", sa.String(length=10), nullable=False),
        sa.Column("address_line1", sa.String(length=200), nullable=False),
        sa.Column("address_line2", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("worksite", sa.String(length=200), nullable=False),
        sa.Column("classification", sa.String(length=200), nullable=False),
        sa.Column("hire_date", sa.Date(), nullable=True),
        sa.Column("join_date", sa.Date(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_members_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "organization_id",
            "member_number",
            name=op.f("uq_members_organization_id_member_number"),
        ),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(
            "ix_members_organization_id_email", ["organization_id", "email"], unique=False
        )
        batch_op.create_index(
            "ix_members_organization_id_phone", ["organization_id", "phone"], unique=False
        )
        batch_op.create_index(
            "ix_members_organization_id_sort_name", ["organization_id", "sort_name"], unique=False
        )

    op.create_table(
        "member_status_periods",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("membership", "employment", name="statuskind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_status_periods_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_status_periods")),
    )
    with op.batch_alter_table("member_status_periods", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_status_periods_member_kind", ["member_id", "kind"], unique=False
        )

    op.create_table(
        "unit_assignments",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_unit_assignments_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["bargaining_units.id"],
            name=op.f("fk_unit_assignments_unit_id_bargaining_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_assignments")),
    )
    with op.batch_alter_table("unit_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unit_assignments_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(
            "ix_unit_assignments_unit_dates", ["unit_id", "start_date", "end_date"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("unit_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_unit_assignments_unit_dates")
        batch_op.drop_index(batch_op.f("ix_unit_assignments_member_id"))

    op.drop_table("unit_assignments")
    with op.batch_alter_table("member_status_periods", schema=None) as batch_op:
        batch_op.drop_index("ix_member_status_periods_member_kind")

    op.drop_table("member_status_periods")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_organization_id_sort_name")
        batch_op.drop_index("ix_members_organization_id_phone")
        batch_op.drop_index("ix_members_organization_id_email")

    op.drop_table("members")
