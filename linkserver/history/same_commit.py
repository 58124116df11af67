"""Work committed in the same transaction as a batch of events.

The history writer commits events in batches (see :mod:`linkserver.history.writer`).
Anything that must never be apart from the events that caused it (the alarm
list, an outbox of events for a broker) registers a :class:`SameCommit` with
the store: its statements run inside the batch's transaction, so either the
events and the extra rows are committed together or neither is.

The contract:

- :meth:`SameCommit.statements` is called by the committing thread with the
  events about to be written (only those: rows an ambiguous earlier attempt
  already stored are left out) and the dialect (``sqlite`` or ``postgresql``).
  It returns statements in the DBAPI's paramstyle (``?`` on SQLite, ``%s``
  on PostgreSQL), each with a list of parameter sets (``executemany``). It
  must not change anything itself: a failed commit is rolled back and the
  same events are offered again (retried, or row by row to isolate a bad one).
- :meth:`SameCommit.committed` is called after the commit returned, in the
  committing thread, before the events' futures complete: quick, no blocking
  (it may update caches and notify watchers).
- A hook that raises fails the batch like a database error that is not
  transient: the events are isolated row by row and each one that still fails
  is rejected (nothing stored). So a hook must only raise for a real problem.

The memory store has no transactions: it calls :meth:`SameCommit.committed`
under its lock right after storing each event (``statements`` is not called).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from linkserver.core.events import Event

#: ``(sql, [parameters, ...])`` run with ``executemany`` in the batch's transaction.
Statement = tuple[str, list[Sequence[Any]]]


class SameCommit(Protocol):
    """Extra statements committed atomically with a batch of events."""

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        """The statements to run in the transaction that stores ``events`` (oldest first)."""
        ...

    def committed(self, events: Sequence[Event]) -> None:
        """``events`` and the statements made for them are committed."""
        ...
