"""The alarm list and its acknowledgements.

Revision ID: 0007_alarms
Revises: 0008_rule_state (0009 and 0008 landed first)
Create Date: 2026-12-02

The DDL must equal the ``alarms`` and ``alarm_acknowledgements`` tables of
linkserver/history/schema.py; tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_alarms"
down_revision: str | None = "0008_rule_state"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
ContextPath = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
# SQLite: INTEGER PRIMARY KEY is the rowid (the table is clustered by id).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", Id, primary_key=True, autoincrement=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("context", ContextPath, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("alarm_level", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first", Time, nullable=False),
        sa.Column("last", Time, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("auto_clear_at", Time, nullable=True),
        sa.Column("cleared", Time, nullable=True),
        sa.Column("cleared_by", sa.Text(), nullable=True),
        sa.Column("cleared_event", sa.BigInteger(), nullable=True),
        sa.Column("cleared_user", sa.Text(), nullable=True),
    )
    op.create_index("ix_alarms_key", "alarms", ["key"], unique=True)
    op.create_table(
        "alarm_acknowledgements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.BigInteger(), nullable=False),
        sa.Column("time", Time, nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_alarm_acknowledgements_alarm_id", "alarm_acknowledgements", ["alarm_id", "time"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_alarm_acknowledgements_alarm_id", table_name="alarm_acknowledgements")
    op.drop_table("alarm_acknowledgements")
    op.drop_index("ix_alarms_key", table_name="alarms")
    op.drop_table("alarms")
