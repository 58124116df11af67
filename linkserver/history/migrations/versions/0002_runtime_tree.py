"""The run-time tree: contexts added or removed since the YAML tree.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

The DDL must equal linkserver/history/schema.py; tests/history/test_migrations.py
compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
ContextPath = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "contexts",
        sa.Column("path", ContextPath, primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("template", sa.Text(), nullable=True),
        sa.Column("child_template", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("changed", Time, nullable=False),
        sa.Column("node", sa.Integer(), nullable=False),
    )
    op.create_index("ix_contexts_seq", "contexts", ["seq"], unique=True)


def downgrade() -> None:
    op.drop_table("contexts")
