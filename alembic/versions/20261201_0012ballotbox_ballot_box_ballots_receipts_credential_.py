"""ballot box: ballots and receipts (apart from voters and from each other), credential hashes

DESIGN.md §4: no column of a ballot or receipt refers to a voter, member or the other, and
none holds a time; on SQLite both tables are WITHOUT ROWID, so pages follow the random key.

Revision ID: 0012ballotbox
Revises: 0011voterindexes
Create Date: 2026-12-01 08:55:38.970317
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012ballotbox"
down_revision: str | None = "0011voterindexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ballots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("tally_group", sa.String(length=30), nullable=False),
        sa.Column("choice", sa.String(length=20), nullable=False),
        sa.Column("mixed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["vote_id"], ["votes.id"], name=op.f("fk_ballots_vote_id_votes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ballots")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.create_index("ix_ballots_vote_id_mixed", ["vote_id", "mixed"], unique=False)

    op.create_table(
        "receipts",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("tally_group", sa.String(length=30), nullable=False),
        sa.Column("mixed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["vote_id"], ["votes.id"], name=op.f("fk_receipts_vote_id_votes")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_receipts")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index("ix_receipts_vote_id_mixed", ["vote_id", "mixed"], unique=False)

    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("factor_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_voters_credential_hash"), ["credential_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_voters_credential_hash"), type_="unique")
        batch_op.drop_column("factor_failures")
        batch_op.drop_column("credential_hash")

    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_vote_id_mixed")

    op.drop_table("receipts")
    with op.batch_alter_table("ballots", schema=None) as batch_op:
        batch_op.drop_index("ix_ballots_vote_id_mixed")

    op.drop_table("ballots")
