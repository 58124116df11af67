"""Events and acknowledgements.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The DDL must equal linkserver/history/schema.py; tests/history/test_migrations.py
compares them. Indexes are explained there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
ContextPath = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
Data = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=False),
        sa.Column("context", ContextPath, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("created", Time, nullable=False),
        sa.Column("expires", Time, nullable=True),
        sa.Column("author", sa.Text(), nullable=True),
        sa.Column("group", sa.Text(), nullable=True),
        sa.Column("data", Data, nullable=False),
        sa.Column("requires_ack", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_events_context_id", "events", ["context", "id"])
    op.create_index("ix_events_name_id", "events", ["name", "id"])
    op.create_index("ix_events_expires", "events", ["expires"])
    op.create_index(
        "ix_events_requires_ack",
        "events",
        ["id"],
        sqlite_where=sa.text("requires_ack = 1"),
        postgresql_where=sa.text("requires_ack = true"),
    )
    op.create_table(
        "acknowledgements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            Id,
            sa.ForeignKey("events.id", ondelete="CASCADE", name="fk_acknowledgements_event_id"),
            nullable=False,
        ),
        sa.Column("time", Time, nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_acknowledgements_event_id_time", "acknowledgements", ["event_id", "time"])


def downgrade() -> None:
    op.drop_table("acknowledgements")
    op.drop_table("events")
