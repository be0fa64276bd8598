"""members touched by each import

Revision ID: 0006touches
Revises: 0005dues
Create Date: 2026-11-24 15:40:26.350849
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006touches"
down_revision: str | None = "0005dues"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roster_import_members",
        sa.Column("roster_import_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("change", sa.String(length=10), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_roster_import_members_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["roster_import_id"],
            ["roster_imports.id"],
            name=op.f("fk_roster_import_members_roster_import_id_roster_imports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_import_members")),
    )
    with op.batch_alter_table("roster_import_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_roster_import_members_member_id"), ["member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("roster_import_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_import_members_member_id"))

    op.drop_table("roster_import_members")
