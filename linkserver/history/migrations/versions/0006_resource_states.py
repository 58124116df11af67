"""The current state of resources with a state machine.

Revision ID: 0006_resource_states
Revises: 0005_bridge_outbox
Create Date: 2026-12-02

The DDL must equal the ``resource_states`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_resource_states"
down_revision: str | None = "0005_bridge_outbox"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
ContextPath = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "resource_states",
        sa.Column("path", ContextPath, primary_key=True),
        sa.Column("machine", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("changed", Time, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("resource_states")
