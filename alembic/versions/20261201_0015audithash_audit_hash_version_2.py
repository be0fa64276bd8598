"""audit: hash version 2, over keyed commitments of personal values

Events already written keep their version-1 hashes (``hash_version`` 1, the server default);
each chain's head gets its random commitment key and remembers its last version-1 event.

Revision ID: 0015audithash
Revises: 0014tally
Create Date: 2026-12-01 12:30:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015audithash"
down_revision: str | None = "0014tally"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

heads = sa.table(
    "audit_heads",
    sa.column("chain", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("pseudonym_key", sa.String),
    sa.column("v1_until", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hash_version", sa.Integer(), server_default="1", nullable=False)
        )
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pseudonym_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("v1_until", sa.Integer(), server_default="0", nullable=False))
    connection = op.get_bind()
    for chain, seq in connection.execute(sa.select(heads.c.chain, heads.c.seq)).all():
        connection.execute(
            heads.update()
            .where(heads.c.chain == chain)
            .values(pseudonym_key=secrets.token_hex(32), v1_until=seq)
        )
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.alter_column("pseudonym_key", existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    # Version-2 hashes cannot be turned back into version 1: a downgraded app would report
    # every event written since as altered.
    with op.batch_alter_table("audit_heads", schema=None) as batch_op:
        batch_op.drop_column("v1_until")
        batch_op.drop_column("pseudonym_key")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash_version")
