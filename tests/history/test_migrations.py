"""Schema migrations: empty to head, refusing a schema newer than the code."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from history_helpers import SQL_BACKENDS
from sqlalchemy import inspect, text

from linkserver.history import migrate
from linkserver.history.engine import make_engine
from linkserver.history.errors import SchemaOutdated, SchemaTooNew
from linkserver.history.schema import metadata
from linkserver.history.sql import SqlHistoryStore

pytestmark = pytest.mark.parametrize("backend", SQL_BACKENDS)


def test_upgrade_takes_an_empty_database_to_head(
    backend: str, empty_database_url: Callable[[str], str]
) -> None:
    url = empty_database_url(backend)
    assert migrate.current_revision(url) is None
    assert migrate.head_revision() == migrate.HEAD  # a new migration moves HEAD too
    assert migrate.upgrade(url) == migrate.head_revision()
    assert migrate.current_revision(url) == migrate.head_revision()
    migrate.check_schema(url)
    assert migrate.upgrade(url) == migrate.head_revision()  # running it again changes nothing
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"events", "acknowledgements", migrate.VERSION_TABLE} <= tables
        with engine.connect() as conn:
            # The migration builds exactly what schema.py describes.
            differences = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert [d for d in differences if not _is_version_table(d)] == []
    finally:
        engine.dispose()


def _is_version_table(difference: object) -> bool:
    return (
        isinstance(difference, tuple)
        and difference[0] == "remove_table"
        and (difference[1].name == migrate.VERSION_TABLE)
    )


def test_a_newer_schema_is_refused_with_a_clear_message(
    backend: str, empty_database_url: Callable[[str], str]
) -> None:
    url = empty_database_url(backend)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0042_from_the_future'"))
    finally:
        engine.dispose()
    for attempt in (
        lambda: SqlHistoryStore(url).start(),
        lambda: SqlHistoryStore(url, upgrade=False).start(),
        lambda: migrate.upgrade(url),
        lambda: migrate.check_schema(url),
    ):
        with pytest.raises(SchemaTooNew) as info:
            attempt()
        message = str(info.value)
        assert "0042_from_the_future" in message
        assert "newer LinkServer" in message
    assert migrate.current_revision(url) == "0042_from_the_future"  # and left untouched


def test_without_upgrade_an_old_schema_is_refused_with_what_to_do(
    backend: str, empty_database_url: Callable[[str], str]
) -> None:
    url = empty_database_url(backend)
    store = SqlHistoryStore(url, upgrade=False)
    with pytest.raises(SchemaOutdated, match="linkserver db upgrade"):
        store.start()
    migrate.upgrade(url)
    store.start()
    store.stop()


def test_a_store_on_a_database_at_head_starts_without_alembic(
    backend: str, empty_database_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alembic (and the Mako and Pygments it loads) was about 0.4 s of every server's start;
    it is needed only to migrate or to refuse a schema, not to find one at head."""
    url = empty_database_url(backend)
    migrate.upgrade(url)
    for name in [name for name in sys.modules if name.split(".")[0] in ("alembic", "mako")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    with pytest.raises(ImportError):
        import alembic.command  # noqa: F401
    for upgrade in (True, False):
        store = SqlHistoryStore(url, upgrade=upgrade)
        store.start()
        store.stop()
    steps: list[tuple[int, int, str]] = []
    assert migrate.upgrade(url, on_step=lambda *step: steps.append(step)) == migrate.HEAD
    assert steps == [(0, 0, migrate.HEAD)]  # what the migrating path reports for no steps
    migrate.check_schema(url)
