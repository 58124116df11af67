"""What alert rules remember: windows, open alerts, escalation steps.

Revision ID: 0008_rule_state
Revises: 0009_nodes
Create Date: 2026-12-02

(0009 landed first, so 0008 follows it.) The DDL must equal the ``rule_state`` table of
linkserver/history/schema.py; tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008_rule_state"
down_revision: str | None = "0009_nodes"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rule_state",
        sa.Column("rule", sa.Text(), primary_key=True),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_state")
