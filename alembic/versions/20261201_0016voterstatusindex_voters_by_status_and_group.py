"""voters: an index by vote, status and tally group, for the counts per group

The tally counts each unit's eligible voters (turnout, quorum); without this it read every
voter row of the vote (200 ms at 1,250,000 voters; 80 ms with it).

Revision ID: 0016voterstatusindex
Revises: 0015audithash
Create Date: 2026-12-01 12:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016voterstatusindex"
down_revision: str | None = "0015audithash"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_voters_vote_id_status_tally_group",
            ["vote_id", "status", "tally_group"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.drop_index("ix_voters_vote_id_status_tally_group")
