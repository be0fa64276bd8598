"""dues payments and grace

Revision ID: 0005dues
Revises: 0004uploads
Create Date: 2026-11-24 15:03:05.321414
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005dues"
down_revision: str | None = "0004uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dues_payments",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_dues_payments_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_dues_payments_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dues_payments")),
    )
    with op.batch_alter_table("dues_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dues_payments_member_period", ["member_id", "period"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_dues_payments_organization_id"), ["organization_id"], unique=False
        )

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dues_grace_months", sa.Integer(), server_default="2", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("dues_grace_months")

    with op.batch_alter_table("dues_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dues_payments_organization_id"))
        batch_op.drop_index("ix_dues_payments_member_period")

    op.drop_table("dues_payments")
