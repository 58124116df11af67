"""The HistoryStore interface: where persistent events go and how they come back.

Every implementation (memory, SQLAlchemy on SQLite or PostgreSQL) passes the
same contract suite in ``tests/history/test_contract.py``.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime

import attrs

from linkserver.core.events import Acknowledgement, Event
from linkserver.core.filters import Filter
from linkserver.core.levels import Level
from linkserver.history.api_tokens import TokenTable
from linkserver.history.device_owners import DeviceOwnerTable
from linkserver.history.failures import FailureTable
from linkserver.history.nodes import NodeLeases
from linkserver.history.outbox import Outbox
from linkserver.history.same_commit import SameCommit
from linkserver.history.sessions import SessionTable
from linkserver.history.tree import TreeStore
from linkserver.history.users import UserStore

#: ``visible(context, event_name) -> bool``: the reader may see events of that kind there.
Visibility = Callable[[str, str], bool]


@attrs.frozen(kw_only=True)
class HistoryQuery:
    """What to read from history. Every criterion narrows the result (AND).

    ``masks`` are context masks (any of them matches; an empty tuple matches
    nothing); ``names`` event names (empty: all). ``min_level``/``max_level``
    are inclusive. ``since <= id_time(id) < until``: the time range is the
    creation time carried by the event id (millisecond precision), so it is a
    slice of the id order that pages walk. ``group``/``author`` must be equal.
    ``acknowledged`` False lists only events not yet acknowledged; with
    ``requires_acknowledgement`` True only those whose definition requires it
    (the operator's to-do list). ``filter`` is a filter expression. ``visible``
    is the reader's permission predicate ``(context, name) -> bool``, applied
    so that pagination stays correct. ``limit`` is 1 to 10000.

    ``cursor`` is the opaque ``next_cursor`` of the previous page of the same
    query: the next page starts right after the last event returned, in the
    query's order. Invalid values raise InvalidQuery / InvalidCursor (both
    ValueErrors).
    """

    masks: tuple[str, ...] = ("**",)
    names: tuple[str, ...] = ()
    min_level: Level | None = None
    max_level: Level | None = None
    since: datetime | None = None
    until: datetime | None = None
    group: str | None = None
    author: str | None = None
    acknowledged: bool | None = None
    requires_acknowledgement: bool | None = None
    filter: Filter | None = None
    visible: Visibility | None = attrs.field(default=None, eq=False)
    newest_first: bool = True
    limit: int = 100
    cursor: str | None = None


@attrs.frozen(kw_only=True)
class HistoryPage:
    """Up to ``limit`` events with their acknowledgements, in the query's order.

    ``next_cursor`` is None when no matching event follows the last one
    returned; otherwise the page is full and the cursor continues after it.
    """

    events: tuple[Event, ...]
    next_cursor: str | None


class HistoryStore(TreeStore):
    """Stores persistent events, answers queries, records acknowledgements, purges;
    and, as a :class:`~linkserver.history.tree.TreeStore`, the run-time tree.

    Writes are asynchronous: :meth:`append` queues an event and returns a
    future that completes once the event is committed. Reads see only
    committed events. Tree changes are written synchronously.
    """

    @abc.abstractmethod
    def start(self) -> None:
        """Open the storage and start the writer. Called once before anything else."""

    @abc.abstractmethod
    def stop(self, timeout: float | None = None) -> None:
        """Commit everything appended so far, then release all resources.

        With a ``timeout`` (seconds) a store whose database stays unreachable
        gives up after it, fails the pending futures and logs how many events
        it could not store; without one it keeps retrying.
        """

    @abc.abstractmethod
    def append(
        self,
        event: Event,
        *,
        requires_acknowledgement: bool = False,
        checked: bool = False,
        waiting: bool = False,
        hurry: bool = False,
    ) -> Future[Event]:
        """Queue a persistent event for writing.

        Blocks while the write queue is full (back-pressure); never drops an
        event. The future's result is the event once it is committed; it is
        never completed before that. If the database rejects the event for
        good (its id is already stored) the future fails with HistoryError.
        Raises ServerStopped after :meth:`stop`, and UnstorableEvent (a
        ValueError) at once for naive datetimes or data JSON cannot hold.

        ``checked``: the caller vouches that the event can be stored (aware
        times, data a format validated); the store may then encode it later,
        off the caller's thread, and fail its future if it cannot after all.
        ``waiting``: the caller waits for the future right away; waiting for
        a future commits the event without the writer's linger, and with
        ``waiting`` the writer need not be woken for it. ``hurry``: commit
        without the linger, for a caller that waits asynchronously (a
        done-callback); events hurried together still share a transaction.
        """

    def store(self, event: Event, *, requires_acknowledgement: bool = False, checked: bool = False) -> None:
        """:meth:`append` for a caller that neither waits for the commit nor watches it: no
        future is made. The event is written exactly as by :meth:`append`; a failure to
        store it is logged. Raises what :meth:`append` raises at once."""
        self.append(event, requires_acknowledgement=requires_acknowledgement, checked=checked)

    @abc.abstractmethod
    def add_same_commit(self, hook: SameCommit) -> None:
        """Commit ``hook``'s work with every batch of events appended from now on, in the same
        transaction (see :mod:`linkserver.history.same_commit`). May be called before :meth:`start`."""

    @abc.abstractmethod
    def outbox(self, bridge: str, node: int) -> Outbox:
        """The outbox of ``bridge`` on ``node`` (:mod:`linkserver.history.outbox`): register its
        hook with :meth:`add_same_commit`, then drain it."""

    @abc.abstractmethod
    def node_leases(self) -> NodeLeases:
        """The node-id leases of a cluster on this database (:mod:`linkserver.history.nodes`);
        usable between start and stop."""

    @abc.abstractmethod
    def flush(self, timeout: float | None = None) -> None:
        """Return once every event appended before the call is committed.

        Raises TimeoutError if that takes longer than ``timeout`` seconds.
        """

    @abc.abstractmethod
    def get(self, event_id: int) -> Event:
        """The stored event with its acknowledgements (oldest first); EventNotFound if absent."""

    @abc.abstractmethod
    def query(self, query: HistoryQuery) -> HistoryPage:
        """One page of matching events, newest first unless asked otherwise, keyset-paginated."""

    @abc.abstractmethod
    def count(self, query: HistoryQuery) -> int:
        """How many events match (ignoring limit and cursor)."""

    @abc.abstractmethod
    def acknowledge(self, event_id: int, acknowledgement: Acknowledgement) -> Event:
        """Add an acknowledgement; returns the event with all its acknowledgements.

        EventNotFound for an unknown id; InvalidAcknowledgement (a ValueError)
        for an empty text or user or a naive time. Nothing is written on error.
        An event appended but not yet committed is waited for, not "not found".
        """

    @abc.abstractmethod
    def delete(self, event_id: int) -> None:
        """Delete one event and its acknowledgements; EventNotFound if absent."""

    @abc.abstractmethod
    def purge_expired(self, now: datetime, batch_size: int = 5000) -> int:
        """Delete events with ``expires <= now`` (and their acknowledgements) in
        batches of ``batch_size``, each its own short transaction, so appends
        are never held up for long; returns how many events went."""

    @property
    @abc.abstractmethod
    def users(self) -> UserStore:
        """The users kept in this history's database (usable between start and stop)."""

    @property
    def keeps_field_order(self) -> bool:
        """False when stored data records come back with their keys in another order than
        they were written in (PostgreSQL's JSONB sorts them): the reader restores it."""
        return True

    @property
    def shared(self) -> bool:
        """True when other processes (other nodes) may write this database at the same time:
        then a node follows what they change (the tree, sessions). False: memory, SQLite."""
        return False

    @property
    @abc.abstractmethod
    def sessions(self) -> SessionTable:
        """The login sessions kept in this history's database (usable between start and stop)."""

    @property
    @abc.abstractmethod
    def device_owners(self) -> DeviceOwnerTable:
        """Which controller owns which device context, kept in this history's database."""

    @property
    @abc.abstractmethod
    def login_failures(self) -> FailureTable:
        """The back-off counts of guessers (failed logins, unknown tokens), kept in this database."""

    @property
    @abc.abstractmethod
    def api_tokens(self) -> TokenTable:
        """The API tokens (for device controllers), kept in this database for every node."""

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Hold the lock ``name`` of this database while the block runs, if no one else holds it.

        Yields True when this caller holds it, False when another holder (another
        node on the same database, or another thread here) does: then do not do
        the work. A holder that dies releases it. The purge job runs under
        ``exclusive("purge")``, so one node at a time purges.
        """
        with self.hold(name) as held:
            yield held.acquired

    def hold(self, name: str) -> AbstractContextManager[Held]:
        """:meth:`exclusive` for a long holder (the rules leader): the :class:`Held` it yields
        also tells later whether the lock is still held."""
        return _local_exclusive(self, name)


@attrs.frozen
class Held:
    """What :meth:`HistoryStore.hold` yields: whether the lock was taken, and a way to ask
    later whether it still is (on PostgreSQL the lock lives as long as the connection that took
    it: a database restart or a cut connection ends it while its holder goes on)."""

    acquired: bool
    check: Callable[[], bool] = attrs.field(default=lambda: True, repr=False)

    def __bool__(self) -> bool:
        return self.acquired

    def still_held(self) -> bool:
        return self.acquired and self.check()


_LOCAL_LOCKS: weakref.WeakKeyDictionary[object, dict[str, threading.Lock]] = weakref.WeakKeyDictionary()
_LOCAL_GUARD = threading.Lock()


@contextlib.contextmanager
def _local_exclusive(owner: object, name: str) -> Iterator[Held]:
    """A lock of this process (memory and SQLite stores: one process uses the database)."""
    with _LOCAL_GUARD:
        lock = _LOCAL_LOCKS.setdefault(owner, {}).setdefault(name, threading.Lock())
    acquired = lock.acquire(blocking=False)
    try:
        yield Held(acquired)
    finally:
        if acquired:
            lock.release()
