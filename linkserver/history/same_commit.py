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
- A statement may carry a check, ``(sql, [parameters, ...], check)``: after
  the statement ran, ``check(rowcount)`` is called with the rows it changed
  (summed over the parameter sets) and raises when that is not what the hook
  needs: a compare-and-set (``UPDATE ... WHERE state = :old``) that found
  another state. The batch then fails as above; the check is asked again for
  each event alone, so what it raises in the end is about that one event, and
  it is the cause (``__cause__``) of the HistoryError its future fails with.
- :meth:`SameCommit.rejected`, when a hook has it, is called with events
  the writer gave up on for good (their futures fail; nothing was stored):
  the hook forgets what it expected for them.

- ``connection_setup`` (SQLite), when a hook has it: a tuple of DDL statements (TEMP
  triggers) that the writer runs on its connection after ``statements`` and before the
  batch's INSERT, whenever the tuple is not (by identity) the one it last ran on that
  connection; a new connection runs it again. So a hook whose statements rely on triggers
  for one batch and not for the next switches them by setting it in ``statements``.

The memory store has no transactions: it calls :meth:`SameCommit.committed`
under its lock right after storing each event (``statements`` is not called).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from linkserver.core.events import Event

#: ``(sql, [parameters, ...])`` run with ``executemany`` in the batch's transaction, or
#: ``(sql, [parameters, ...], check)``: ``check(rowcount)`` raises when the statement did not
#: change the rows it had to (a compare-and-set that lost).
Statement = tuple[str, list[Sequence[Any]]] | tuple[str, list[Sequence[Any]], Callable[[int], None]]


class SameCommit(Protocol):
    """Extra statements committed atomically with a batch of events."""

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        """The statements to run in the transaction that stores ``events`` (oldest first)."""
        ...

    def committed(self, events: Sequence[Event]) -> None:
        """``events`` and the statements made for them are committed."""
        ...


class RejectionAware(SameCommit, Protocol):
    """A hook that is told of the events the writer gave up on (optional: see the module doc)."""

    def rejected(self, events: Sequence[Event]) -> None:
        """``events`` will never be stored (rejected by the database or a check, or history stopped)."""
        ...
