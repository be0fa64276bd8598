"""upload state for background imports

Revision ID: 0008uploadstate
Revises: 0007apitokens
Create Date: 2026-11-25 22:15:30.471540
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008uploadstate"
down_revision: str | None = "0007apitokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("roster_uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "state",
                sa.Enum(
                    "ready",
                    "checking",
                    "checked",
                    "applying",
                    "applied",
                    "failed",
                    name="uploadstate",
                    native_enum=False,
                    length=20,
                ),
                server_default="ready",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("row_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("rows_done", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("summary", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("problem", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("job_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_roster_uploads_job_id_jobs"), "jobs", ["job_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("roster_uploads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_roster_uploads_job_id_jobs"), type_="foreignkey")
        batch_op.drop_column("job_id")
        batch_op.drop_column("problem")
        batch_op.drop_column("summary")
        batch_op.drop_column("rows_done")
        batch_op.drop_column("row_count")
        batch_op.drop_column("state")
