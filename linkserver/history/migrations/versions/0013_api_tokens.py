"""API tokens in the database, shared by every node of a cluster (they were in tokens.json).

Revision ID: 0013_api_tokens
Revises: 0012_login_failures
Create Date: 2026-12-02

The DDL must equal the ``api_tokens`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_api_tokens"
down_revision: str | None = "0012_login_failures"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("grants", sa.Text(), nullable=False),
        sa.Column("created", Time, nullable=False),
        sa.Column("expires", Time, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
