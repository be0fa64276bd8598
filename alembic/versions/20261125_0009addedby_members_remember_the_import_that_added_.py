"""members remember the import that added them

Revision ID: 0009addedby
Revises: 0008uploadstate
Create Date: 2026-11-25 22:25:16.280277
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009addedby"
down_revision: str | None = "0008uploadstate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_by_import_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_members_added_by_import_id_roster_imports"),
            "roster_imports",
            ["added_by_import_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_members_added_by_import_id_roster_imports"), type_="foreignkey"
        )
        batch_op.drop_column("added_by_import_id")
