"""votes, their documents, committee and frozen voter lists

Revision ID: 0010votes
Revises: 0009addedby
Create Date: 2026-12-01 08:24:14.129052
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010votes"
down_revision: str | None = "0009addedby"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "votes",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("ratification", "question", name="votekind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "scheduled",
                "open",
                "closed",
                name="votestatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("question", sa.JSON(), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cutoff", sa.Date(), nullable=True),
        sa.Column("eligibility", sa.JSON(), nullable=True),
        sa.Column(
            "tally_grouping",
            sa.Enum("aggregate", "per_unit", name="tallygrouping", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("threshold", sa.JSON(), nullable=False),
        sa.Column("signatures_required", sa.Integer(), nullable=False),
        sa.Column(
            "second_factor",
            sa.Enum(
                "member_last4",
                "birth_year",
                "postal_code",
                "none",
                name="secondfactor",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("mail_letters", sa.Boolean(), nullable=False),
        sa.Column("voter_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["staff_users.id"], name=op.f("fk_votes_created_by_id_staff_users")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_votes_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
    )
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_votes_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_votes_status_opens_at", ["status", "opens_at"], unique=False)

    op.create_table(
        "vote_committee_members",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["staff_users.id"],
            name=op.f("fk_vote_committee_members_user_id_staff_users"),
        ),
        sa.ForeignKeyConstraint(
            ["vote_id"], ["votes.id"], name=op.f("fk_vote_committee_members_vote_id_votes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vote_committee_members")),
        sa.UniqueConstraint(
            "vote_id", "user_id", name=op.f("uq_vote_committee_members_vote_id_user_id")
        ),
    )
    op.create_table(
        "vote_documents",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("summary_markdown", sa.Text(), nullable=False),
        sa.Column("summary_html", sa.Text(), nullable=False),
        sa.Column("full_text", sa.LargeBinary(), nullable=True),
        sa.Column("full_text_name", sa.String(length=255), nullable=False),
        sa.Column("full_text_size", sa.Integer(), nullable=False),
        sa.Column("full_text_digest", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vote_id"], ["votes.id"], name=op.f("fk_vote_documents_vote_id_votes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vote_documents")),
        sa.UniqueConstraint("vote_id", "language", name=op.f("uq_vote_documents_vote_id_language")),
    )
    op.create_table(
        "vote_options",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=20), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vote_id"], ["votes.id"], name=op.f("fk_vote_options_vote_id_votes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vote_options")),
        sa.UniqueConstraint("vote_id", "key", name=op.f("uq_vote_options_vote_id_key")),
    )
    with op.batch_alter_table("vote_options", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vote_options_vote_id"), ["vote_id"], unique=False)

    op.create_table(
        "voters",
        sa.Column("vote_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("member_number", sa.String(length=50), nullable=False),
        sa.Column("tally_group", sa.String(length=30), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "eligible",
                "excluded",
                "challenged",
                name="voterstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "factor",
            sa.Enum(
                "member_last4",
                "birth_year",
                "postal_code",
                "none",
                name="secondfactor",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("factor_check", sa.String(length=64), nullable=True),
        sa.Column("credential_issue", sa.Integer(), nullable=False),
        sa.Column("has_voted", sa.Boolean(), nullable=False),
        sa.Column("voted_hour", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "channel",
            sa.Enum("online", "paper", "in_person", name="channel", native_enum=False, length=10),
            nullable=True,
        ),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_voters_member_id_members")
        ),
        sa.ForeignKeyConstraint(["vote_id"], ["votes.id"], name=op.f("fk_voters_vote_id_votes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voters")),
        sa.UniqueConstraint("vote_id", "member_id", name=op.f("uq_voters_vote_id_member_id")),
    )
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voters_member_id"), ["member_id"], unique=False)
        batch_op.create_index(
            "ix_voters_vote_id_member_number", ["vote_id", "member_number"], unique=False
        )
        batch_op.create_index(
            "ix_voters_vote_id_status_tally_group",
            ["vote_id", "status", "tally_group"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("voters", schema=None) as batch_op:
        batch_op.drop_index("ix_voters_vote_id_status_tally_group")
        batch_op.drop_index("ix_voters_vote_id_member_number")
        batch_op.drop_index(batch_op.f("ix_voters_member_id"))

    op.drop_table("voters")
    with op.batch_alter_table("vote_options", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vote_options_vote_id"))

    op.drop_table("vote_options")
    op.drop_table("vote_documents")
    op.drop_table("vote_committee_members")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_index("ix_votes_status_opens_at")
        batch_op.drop_index(batch_op.f("ix_votes_organization_id"))

    op.drop_table("votes")
