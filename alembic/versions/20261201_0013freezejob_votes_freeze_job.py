"""votes: the job freezing a big voter list, and why the last one was refused

Revision ID: 0013freezejob
Revises: 0012ballotbox
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013freezejob"
down_revision: str | None = "0012ballotbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("freeze_job_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("freeze_error", sa.String(length=300), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_column("freeze_error")
        batch_op.drop_column("freeze_job_id")
