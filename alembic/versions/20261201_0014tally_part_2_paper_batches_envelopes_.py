"""part 2: paper batches, challenged envelopes, committee signatures, the fixed result

Vote statuses tallied and certified need no change (the status is a string column).

Revision ID: 0014tally
Revises: 0013freezejob
Create Date: 2026-12-01 11:47:17.854355
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014tally"
down_revision: str | None = "0013freezejob"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "paper_batches",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("tally_group", sa.String(length=30), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "entered",
                "confirmed",
                "withdrawn",
                name="batchstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("entered_by_id", sa.Uuid(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by_id", sa.Uuid(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"],
            ["staff_users.id"],
            name=op.f("fk_paper_batches_confirmed_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["entered_by_id"],
            ["staff_users.id"],
            name=op.f("fk_paper_batches_entered_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["vote_id"], ["votes.id"], name=op.f("fk_paper_batches_vote_id_votes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_batches")),
    )
    with op.batch_alter_table("paper_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_batches_vote_id"), ["vote_id"], unique=False)

    op.create_table(
        "vote_signatures",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_users.id"], name=op.f("fk_vote_signatures_user_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["vote_id"], ["votes.id"], name=op.f("fk_vote_signatures_vote_id_votes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vote_signatures")),
        sa.UniqueConstraint("vote_id", "user_id", name=op.f("uq_vote_signatures_vote_id_user_id")),
    )
    op.create_table(
        "envelopes",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("voter_id", sa.Uuid(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("online", "paper", "in_person", name="channel", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "sealed",
                "accepted",
                "rejected",
                name="envelopestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["staff_users.id"],
            name=op.f("fk_envelopes_decided_by_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(["vote_id"], ["votes.id"], name=op.f("fk_envelopes_vote_id_votes")),
        sa.ForeignKeyConstraint(
            ["voter_id"], ["voters.id"], name=op.f("fk_envelopes_voter_id_voters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_envelopes")),
        sa.UniqueConstraint("voter_id", name=op.f("uq_envelopes_voter_id")),
    )
    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_envelopes_vote_id"), ["vote_id"], unique=False)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("publish_results", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allow_blank", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("box_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("reconciliation_note", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("tallied_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("certified_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_column("certified_at")
        batch_op.drop_column("tallied_at")
        batch_op.drop_column("reconciliation_note")
        batch_op.drop_column("box_digest")
        batch_op.drop_column("result")
        batch_op.drop_column("allow_blank")

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("publish_results")

    with op.batch_alter_table("envelopes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_envelopes_vote_id"))

    op.drop_table("envelopes")
    op.drop_table("vote_signatures")
    with op.batch_alter_table("paper_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_batches_vote_id"))

    op.drop_table("paper_batches")
