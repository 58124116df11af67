"""Failed logins counted per key, shared by every node of a cluster.

Revision ID: 0012_login_failures
Revises: 0011_device_owners
Create Date: 2026-12-02

The DDL must equal the ``login_failures`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_login_failures"
down_revision: str | None = "0011_device_owners"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("rule", sa.Text(), primary_key=True),
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last", Time, nullable=False),
        sa.Column("locked_until", Time, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
