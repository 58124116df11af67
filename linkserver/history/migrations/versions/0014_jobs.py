"""The job view: one row per job, written in the commit of the job events that move it.

Revision ID: 0014_jobs
Revises: 0013_api_tokens
Create Date: 2026-12-02

The DDL must equal the ``jobs`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_jobs"
down_revision: str | None = "0013_api_tokens"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
ContextPath = sa.Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("resource", ContextPath, nullable=False),
        sa.Column("user", sa.Text(), nullable=True),
        sa.Column("asynchronous", sa.Boolean(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("scheduled", Time, nullable=True),
        sa.Column("started", Time, nullable=True),
        sa.Column("finished", Time, nullable=True),
        sa.Column("progress", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("start_within", sa.Float(), nullable=True),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("hanging", sa.Text(), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status", table_name="jobs")
    op.drop_table("jobs")
