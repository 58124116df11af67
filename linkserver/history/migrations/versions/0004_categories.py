"""Event categories: the definition's category stored with each event.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Nullable: events stored before have none. Adding a nullable column without a
default is a catalog change on both SQLite and PostgreSQL (no table rewrite).
The DDL must equal the ``events`` table of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("category", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("category")
