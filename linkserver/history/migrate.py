"""Schema migrations (Alembic, run from code: no alembic.ini).

``linkserver db upgrade`` calls :func:`upgrade`. A server refuses a database
whose revision this code does not know (:class:`SchemaTooNew`): a newer
LinkServer migrated it and this one would misread it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from linkserver.history.engine import make_engine
from linkserver.history.errors import SchemaOutdated, SchemaTooNew

VERSION_TABLE = "linkserver_schema_version"
MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x4C696E6B48697374  # "LinkHist": one migrating node at a time

Target = str | URL | Engine


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


@contextlib.contextmanager
def _connection(target: Target) -> Iterator[Connection]:
    if isinstance(target, Engine):
        with target.connect() as conn:
            yield conn
        return
    engine = make_engine(target)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _current(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    revision = context.get_current_revision()
    conn.rollback()
    return revision


def current_revision(target: Target) -> str | None:
    """The database's schema revision; None for a database without LinkServer tables."""
    with _connection(target) as conn:
        return _current(conn)


def _refuse_unknown(revision: str | None) -> None:
    if revision is not None and revision not in known_revisions():
        raise SchemaTooNew(revision, head_revision())


def check_schema(target: Target) -> None:
    """Return if the database is at this code's head revision.

    Raises SchemaTooNew for a revision this code does not know and
    SchemaOutdated for an older (or missing) schema.
    """
    revision = current_revision(target)
    _refuse_unknown(revision)
    head = head_revision()
    if revision != head:
        raise SchemaOutdated(revision, head)


def upgrade(
    target: Target, revision: str = "head", *, on_step: Callable[[int, int, str], None] | None = None
) -> str:
    """Migrate the database to ``revision`` (default: the newest); returns the revision reached.

    Safe to run on an up-to-date database; refuses (SchemaTooNew) one that is
    newer than this code. On PostgreSQL an advisory lock makes nodes starting
    together migrate one after the other. ``on_step(done, total, revision)``
    is called before the first migration and after each one (for progress).
    """
    with _connection(target) as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            conn.commit()
        try:
            current = _current(conn)
            _refuse_unknown(current)
            config = alembic_config(conn)
            if on_step is not None:
                steps = list(_scripts().iterate_revisions(revision, current))
                done = iter(range(1, len(steps) + 1))
                on_step(0, len(steps), current or "none")
                config.attributes["on_version_apply"] = lambda *, step, **_: on_step(
                    next(done, len(steps)), len(steps), step.up_revision_id or ""
                )
            command.upgrade(config, revision)
            conn.commit()
            reached = _current(conn)
        finally:
            if postgres:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
                conn.commit()
    assert reached is not None
    return reached
