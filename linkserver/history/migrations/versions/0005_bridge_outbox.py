"""The outbox of outbound bridges.

Revision ID: 0005_bridge_outbox
Revises: 0004
Create Date: 2026-12-02

The DDL must equal the ``bridge_outbox`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005_bridge_outbox"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "bridge_outbox",
        sa.Column("bridge", sa.Text(), primary_key=True),
        sa.Column("node", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    )


def downgrade() -> None:
    op.drop_table("bridge_outbox")
