"""What the multi-process tests (tests/nodes, tests/cluster) share: a PostgreSQL schema of the test's
own, and ``linkserver serve`` processes on loopback ports whose output the tests keep.

PostgreSQL comes from ``LINKSERVER_TEST_POSTGRES_URL``. Unset: the tests that need it are skipped.
Set but unreachable: they fail. Other helpers' tests use the same server at the same time, so each
test has a schema of its own: an empty one (:func:`fresh_schema`, for the tests of migrations), or
one already at this code's head revision with no rows (:func:`migrated_schema`, from a pool).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")

_Process = TypeVar("_Process", bound="ServeProcess")


@contextlib.contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """A URL whose connections live in a new schema named ``prefix_<random>``, dropped after."""
    if not POSTGRES_URL:
        pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)  # unreachable: the test fails here, it is not skipped
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


class SchemaPool:
    """Schemas at this code's head revision, migrated once each and handed to one test at a time.

    Migrating a schema takes 0.3-1 s (most of the PostgreSQL tests' setup). A schema given back
    is made as a fresh one would be before anyone gets it again, or dropped:

    - it is renamed first: a connection the test left open (a leaked store, a node still being
      killed) no longer finds its tables, and the stores' advisory locks, keyed by the schema's
      name (linkserver/history/sql.py), are never the last test's;
    - every table that was written (its size is no longer a fresh table's) is truncated and
      every sequence restarted;
    - it must still have exactly the tables, columns, constraints, indexes, functions, triggers
      and schema version the migration made, and no planner statistics (an ANALYZE would make
      the next test's plans differ from a fresh schema's). Otherwise it is dropped.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None
        self._free: list[str] = []
        self._undropped: list[str] = []
        self._fresh_sizes: dict[str, int] = {}
        self._shape: tuple[str, list[str]] | None = None

    def _admin(self) -> Any:
        if self._engine is None:
            self._engine = create_engine(self.url)  # unreachable: the test fails here, never skips
        return self._engine

    def url_for(self, schema: str) -> str:
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}options={quote(f'-csearch_path={schema}')}"

    @contextlib.contextmanager
    def schema(self, prefix: str) -> Iterator[str]:
        """A URL whose connections live in a migrated schema with no rows, renamed ``prefix_<random>``."""
        schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
        spare = self._free.pop() if self._free else None
        with self._admin().begin() as conn:
            if spare is not None:
                conn.execute(text(f'ALTER SCHEMA "{spare}" RENAME TO "{schema}"'))
            else:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        if spare is None:
            try:
                self._migrate(schema)
            except BaseException:
                self._drop(schema)
                raise
        try:
            yield self.url_for(schema)
        finally:
            self._give_back(schema)

    def _migrate(self, schema: str) -> None:
        from linkserver.history import migrate

        migrate.upgrade(self.url_for(schema))
        with self._admin().connect() as conn:
            sizes = dict(conn.execute(_TABLE_SIZES, {"schema": schema}).all())
            shape = _shape(conn, schema)
        if self._shape is None:
            self._fresh_sizes, self._shape = sizes, shape
        assert (sizes, shape) == (self._fresh_sizes, self._shape), "two migrations made different schemas"

    def _give_back(self, schema: str) -> None:
        spare = f"lspool_{uuid.uuid4().hex[:12]}"
        try:
            with self._admin().begin() as conn:
                # A test's leftover connection holding a lock: give up quickly, drop it later.
                conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                conn.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{spare}"'))
                written = [
                    name
                    for name, size in conn.execute(_TABLE_SIZES, {"schema": spare}).all()
                    if size != self._fresh_sizes.get(name) and name != "linkserver_schema_version"
                ]
                if written:
                    tables = ", ".join(f'"{spare}"."{name}"' for name in written)
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                for (sequence,) in conn.execute(_SEQUENCES, {"schema": spare}).all():
                    conn.execute(text(f'ALTER SEQUENCE "{spare}"."{sequence}" RESTART'))
                sizes = dict(conn.execute(_TABLE_SIZES, {"schema": spare}).all())
                reusable = (sizes, _shape(conn, spare)) == (self._fresh_sizes, self._shape)
        except Exception:
            reusable = False
        if reusable:
            self._free.append(spare)
        else:
            self._drop(spare, schema)

    def _drop(self, *names: str) -> None:
        """Drop the schemas; one a leftover connection still locks is dropped at :meth:`close`."""
        for name in names:
            try:
                with self._admin().begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            except Exception:
                self._undropped.append(name)

    def close(self) -> None:
        """Drop the spare schemas and those left undropped (at the end of the session)."""
        if self._engine is not None:
            with self._admin().begin() as conn:
                for name in [*self._free, *self._undropped]:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            self._free.clear()
            self._undropped.clear()
            self._engine.dispose()
            self._engine = None


# Each table of a schema with its size on disk (a fresh table's is that of its empty indexes).
_TABLE_SIZES = text(
    "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'r'"
)
_SEQUENCES = text("SELECT sequencename FROM pg_sequences WHERE schemaname = :schema")
# What a schema is made of, without its name: a digest of every relation, column (type,
# default, nullability), constraint, index, function and trigger, and whether the planner has
# statistics on any of it.
_SHAPE = text(
    r"""
    SELECT md5(string_agg(item, ' / ' ORDER BY item)) FROM (
      SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(a.attname, '') || ' '
             || coalesce(format_type(a.atttypid, a.atttypmod), '') || ' ' || coalesce(a.attnotnull::text, '')
             || ' ' || coalesce(replace(pg_get_expr(d.adbin, d.adrelid), n.nspname || '.', ''), '') AS item
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
      WHERE n.nspname = :schema
      UNION ALL
      SELECT 'constraint ' || o.conname || ' ' || replace(pg_get_constraintdef(o.oid), n.nspname || '.', '')
      FROM pg_constraint o JOIN pg_namespace n ON n.oid = o.connamespace WHERE n.nspname = :schema
      UNION ALL
      SELECT 'index ' || replace(indexdef, ' ' || schemaname || '.', ' ') FROM pg_indexes
      WHERE schemaname = :schema
      UNION ALL
      SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = :schema
      UNION ALL
      SELECT 'trigger ' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND NOT t.tgisinternal
      UNION ALL
      SELECT 'statistics ' || tablename || ' ' || attname FROM pg_stats WHERE schemaname = :schema
    ) AS shape
    """
)


def _shape(conn: Any, schema: str) -> tuple[str, list[str]]:
    """The schema's :data:`_SHAPE` digest and the rows of its version table."""
    digest = conn.execute(_SHAPE, {"schema": schema}).scalar_one()
    versions = conn.execute(text(f'SELECT version_num FROM "{schema}".linkserver_schema_version')).scalars()
    return digest, sorted(versions)


_POOL: SchemaPool | None = None


@contextlib.contextmanager
def migrated_schema(prefix: str) -> Iterator[str]:
    """A URL whose connections live in a schema of the test's own, named ``prefix_<random>``, at
    this code's head revision and with no rows (see :class:`SchemaPool`); made like new after."""
    global _POOL
    if not POSTGRES_URL:
        pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
    if _POOL is None:
        _POOL = SchemaPool(POSTGRES_URL)
    with _POOL.schema(prefix) as url:
        yield url


def close_schema_pool() -> None:
    if _POOL is not None:
        _POOL.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """One ``linkserver serve`` process in ``directory``, on a free loopback port.

    A subclass writes the configuration (:meth:`config_text`) and says when the
    node serves (:meth:`wait_serving`). Every start appends the process's output
    to ``directory/server.log``, which the test keeps for a failure's reader.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api/v1"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.config = directory / "linkserver.yaml"
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[str] | None = None
        self._started_at = 0  # where this start's output begins in the log

    def config_text(self) -> str:
        raise NotImplementedError

    def launch(self: _Process) -> _Process:
        """Start the process; :meth:`wait_serving` waits for it (start several at once)."""
        self.config.write_text(self.config_text())
        self._started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "linkserver.net.serve", "--config", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def wait_serving(self: _Process, timeout: float = 90) -> _Process:
        raise NotImplementedError

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Return once ``ready()`` (HTTP to the node) says so and this start's output says it
        listens on its port (not another process that took the port meanwhile: the answer
        would be someone else's); AssertionError with the node's output when the process
        exits or ``timeout`` passes first."""
        assert self.process is not None, "launch() it first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{what} exited with {self.process.returncode}:\n{self.log()}")
            try:
                if ready() and f"listening on {self.url} " in self.log()[self._started_at :]:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"{what} did not serve within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """Everything the process wrote so far (all its starts)."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: nothing is flushed or given back."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, and SIGKILL if the node has not stopped within ``timeout`` seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def eventually(check: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> Any:
    """``check()``'s first truthy result, trying every 20 ms for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.02)
