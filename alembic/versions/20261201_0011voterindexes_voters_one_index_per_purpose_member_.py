"""voters: one index per purpose, member numbers unique per vote, server defaults

Revision ID: 0011voterindexes
Revises: 0010votes
Create Date: 2026-12-01 08:46:23.325643
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011voterindexes"
down_revision: str | None = "0010votes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_voters_vote_id_member_number"))
        batch_op.drop_index(batch_op.f("ix_voters_vote_id_status_tally_group"))
        batch_op.drop_constraint(batch_op.f("uq_voters_vote_id_member_id"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_voters_vote_id_member_number"), ["vote_id", "member_number"]
        )
        batch_op.drop_column("added_at")
        batch_op.alter_column("credential_issue", server_default="1")
        batch_op.alter_column("has_voted", server_default=sa.false())


def downgrade() -> None:
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.alter_column("has_voted", server_default=None)
        batch_op.alter_column("credential_issue", server_default=None)
        batch_op.add_column(
            sa.Column(
                "added_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
        batch_op.drop_constraint(batch_op.f("uq_voters_vote_id_member_number"), type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_voters_vote_id_member_id"), ["vote_id", "member_id"]
        )
        batch_op.create_index(
            batch_op.f("ix_voters_vote_id_status_tally_group"),
            ["vote_id", "status", "tally_group"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_voters_vote_id_member_number"),
            ["vote_id", "member_number"],
            unique=False,
        )
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.alter_column("added_at", server_default=None)
