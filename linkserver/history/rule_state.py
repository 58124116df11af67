"""Where alert rules keep their state: the ``rule_state`` table (SQL) or a dict.

One row per (rule, key) holding the JSON of the key's state
(:meth:`linkserver.core.rule_state.RuleState.dump`). The server writes the
rows that changed in one transaction every five seconds, at once after a
rule fired something, and at stop (server/rules.py), so a restart continues
windows, open alerts and escalations where they were; what a crash of the
process loses is in docs/rules.md ("What a crash loses"). Every
implementation passes ``tests/history/test_rule_state_store.py`` (memory,
SQLite, PostgreSQL).
"""

from __future__ import annotations

import abc
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, delete, select, tuple_

from linkserver.history.base import HistoryStore
from linkserver.history.schema import rule_state

#: (rule, key, state or None: delete the row)
Change = tuple[str, str, "dict[str, Any] | None"]


class RuleStateStore(abc.ABC):
    """The rule state of one history database. Thread-safe."""

    @abc.abstractmethod
    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every row: ``{rule: {key: state}}``."""

    @abc.abstractmethod
    def save(self, changes: Sequence[Change]) -> None:
        """Write ``changes`` in one transaction: a state replaces the row, None deletes it."""

    @abc.abstractmethod
    def forget(self, rules: Iterable[str]) -> None:
        """Delete every row of ``rules`` (rules no longer configured)."""


class MemoryRuleStateStore(RuleStateStore):
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        found: dict[str, dict[str, dict[str, Any]]] = {}
        with self._lock:
            for (rule, key), state in self._rows.items():
                found.setdefault(rule, {})[key] = json.loads(state)
        return found

    def save(self, changes: Sequence[Change]) -> None:
        with self._lock:
            for rule, key, state in changes:
                if state is None:
                    self._rows.pop((rule, key), None)
                else:
                    self._rows[(rule, key)] = json.dumps(state)

    def forget(self, rules: Iterable[str]) -> None:
        gone = set(rules)
        with self._lock:
            for row in [row for row in self._rows if row[0] in gone]:
                del self._rows[row]


_UPSERT = (
    "INSERT INTO rule_state (rule, key, state, updated_ms) VALUES ({marks}) "
    "ON CONFLICT (rule, key) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms"
)
_UPSERT_SQL = {
    "sqlite": _UPSERT.format(marks="?, ?, ?, ?"),
    "postgresql": _UPSERT.format(marks="%s, %s, %s, %s"),
}


class SqlRuleStateStore(RuleStateStore):
    """``engine()`` gives the history's engine (valid between its start and stop)."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock  # the history's, for writes besides its writer's

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        found: dict[str, dict[str, dict[str, Any]]] = {}
        with self._engine().connect() as conn:
            for row in conn.execute(select(rule_state.c.rule, rule_state.c.key, rule_state.c.state)):
                found.setdefault(row.rule, {})[row.key] = json.loads(row.state)
        return found

    def save(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        now = int(time.time() * 1000)
        written = [(rule, key, json.dumps(state), now) for rule, key, state in changes if state is not None]
        gone = [(rule, key) for rule, key, state in changes if state is None]
        engine = self._engine()
        with self._write_lock(), engine.begin() as conn:
            if written:
                conn.exec_driver_sql(_UPSERT_SQL[engine.dialect.name], written)
            for start in range(0, len(gone), 500):
                conn.execute(
                    delete(rule_state).where(
                        tuple_(rule_state.c.rule, rule_state.c.key).in_(gone[start : start + 500])
                    )
                )

    def forget(self, rules: Iterable[str]) -> None:
        rules = list(rules)
        if rules:
            with self._write_lock(), self._engine().begin() as conn:
                conn.execute(delete(rule_state).where(rule_state.c.rule.in_(rules)))


def open_rule_state(history: HistoryStore) -> RuleStateStore:
    """The rule state store of ``history``'s database (memory for the memory store)."""
    from linkserver.history.sql import SqlHistoryStore  # SQLAlchemy's store only when used

    if isinstance(history, SqlHistoryStore):
        return SqlRuleStateStore(lambda: history.engine, lambda: history.write_lock)
    return MemoryRuleStateStore()
