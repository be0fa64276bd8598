"""roster uploads and saved mappings

Revision ID: 0004uploads
Revises: 0003rosterimports
Create Date: 2026-11-24 14:58:24.146281
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004uploads"
down_revision: str | None = "0003rosterimports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "column_mappings",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_column_mappings_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_column_mappings")),
        sa.UniqueConstraint(
            "organization_id", "source", name=op.f("uq_column_mappings_organization_id_source")
        ),
    )
    op.create_table(
        "roster_uploads",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column(
            "scope",
            sa.Enum(
                "unit",
                "unit_column",
                "update_only",
                name="importscope",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("roster_import_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["staff_users.id"],
            name=op.f("fk_roster_uploads_created_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_roster_uploads_organization_id_organizations"),
        ),
        sa.ForeignKeyConstraint(
            ["roster_import_id"],
            ["roster_imports.id"],
            name=op.f("fk_roster_uploads_roster_import_id_roster_imports"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["bargaining_units.id"],
            name=op.f("fk_roster_uploads_unit_id_bargaining_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_uploads")),
    )
    with op.batch_alter_table("roster_uploads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_roster_uploads_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("roster_uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_uploads_organization_id"))

    op.drop_table("roster_uploads")
    op.drop_table("column_mappings")
