"""Device owners shared by every node of a cluster.

Revision ID: 0011_device_owners
Revises: 0010_sessions
Create Date: 2026-12-02

The DDL must equal the ``device_owners`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_device_owners"
down_revision: str | None = "0010_sessions"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
ContextPath = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "device_owners",
        sa.Column("path", ContextPath, primary_key=True),
        sa.Column("controller", sa.Text(), nullable=False),
        sa.Column("principal", sa.Text(), nullable=True),
        sa.Column("node", sa.Integer(), nullable=False),
        sa.Column("claimed", Time, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_owners")
