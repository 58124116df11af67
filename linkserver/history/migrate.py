"""Schema migrations (Alembic, run from code: no alembic.ini).

``linkserver db upgrade`` calls :func:`upgrade`. A server refuses a database
whose revision this code does not know (:class:`SchemaTooNew`): a newer
LinkServer migrated it and this one would misread it.

A database already at :data:`HEAD` is recognised with plain SQL, and Alembic
is imported only when there is more to do (a migration, a refusal, a
revision to name): Alembic and what it loads (Mako, Pygments) were about 0.4 s
of every server's start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import URL

from linkserver.history.engine import make_engine
from linkserver.history.errors import SchemaOutdated, SchemaTooNew

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

VERSION_TABLE = "linkserver_schema_version"
MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration of migrations/versions/: a new migration changes it too
# (tests/history/test_migrations.py checks that it is Alembic's head).
HEAD = "0015_alarms_cleared_key"
_PG_LOCK_KEY = 0x4C696E6B48697374  # "LinkHist": one migrating node at a time

Target = str | URL | Engine


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

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


def _at_head(conn: Connection) -> bool:
    """True when the database is at :data:`HEAD`, read as Alembic reads it (the version
    table in the connection's default schema, one row) but without importing Alembic."""
    try:
        if not inspect(conn).has_table(VERSION_TABLE):
            return False
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
        return rows == [HEAD]
    finally:
        conn.rollback()


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

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
    with _connection(target) as conn:
        if _at_head(conn):
            return
        revision = _current(conn)
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
        if revision in ("head", HEAD) and _at_head(conn):
            # Nothing to migrate (read without Alembic or the lock: a node that migrates
            # commits the head revision last, so a head read here is all there).
            if on_step is not None:
                on_step(0, 0, HEAD)
            return HEAD
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            conn.commit()
        try:
            current = _current(conn)
            _refuse_unknown(current)
            from alembic import command

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
