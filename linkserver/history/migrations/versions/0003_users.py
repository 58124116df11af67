"""Users managed at run time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

The DDL must equal the ``users`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# SQLite: integer microseconds since 1970-01-01 UTC (see linkserver/history/codec.py).
Time = sa.BigInteger().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
Data = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("grants", Data, nullable=False),
        sa.Column("created", Time, nullable=False),
        sa.Column("updated", Time, nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("users")
