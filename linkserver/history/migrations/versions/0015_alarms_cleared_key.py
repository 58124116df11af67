"""A partial index of the cleared alarms' keys, for the writer's DELETE of recurring ones.

Revision ID: 0015_alarms_cleared_key
Revises: 0014_jobs
Create Date: 2026-12-02

Every batch that reduces events into alarms first deletes the cleared alarms of the keys it
raises (linkserver/history/alarm_sql.py, ``_unclear_sql``). Through the unique key index
that is a descent of that index and one of the table per key; this index holds only the
cleared alarms, so it is a lookup in a small index (about half the cost with 1,000 alarms,
a seventh with 100,000). Occurrences never touch it: they do not change ``state``.

The DDL must equal the ``ix_alarms_cleared_key`` index of linkserver/history/schema.py;
tests/history/test_migrations.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015_alarms_cleared_key"
down_revision: str | None = "0014_jobs"
branch_labels: str | None = None
depends_on: str | None = None

_CLEARED = sa.text("state = 'cleared'")


def upgrade() -> None:
    op.create_index(
        "ix_alarms_cleared_key",
        "alarms",
        ["key"],
        sqlite_where=_CLEARED,
        postgresql_where=_CLEARED,
    )


def downgrade() -> None:
    op.drop_index("ix_alarms_cleared_key", table_name="alarms")
