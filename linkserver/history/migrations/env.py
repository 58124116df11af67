"""Alembic environment: runs on the connection that linkserver.history.migrate hands over.

There is no alembic.ini; :func:`linkserver.history.migrate.alembic_config`
builds the configuration and puts an open connection in
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from linkserver.history.migrate import VERSION_TABLE
from linkserver.history.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run history migrations through linkserver.history.migrate (linkserver db upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
    on_version_apply=context.config.attributes.get("on_version_apply"),
)
with context.begin_transaction():
    context.run_migrations()
