"""A HistoryStore in memory: for tests, yours and ours. Same contract, nothing on disk.

Appends are stored at once, so their futures are already complete. Events are
checked exactly as the SQL store checks them (aware datetimes, JSON-able data),
so code tested against this store does not fail later against SQLite.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime

import attrs

from linkserver.core.errors import EventNotFound, HistoryError, ServerStopped
from linkserver.core.events import Acknowledgement, Event
from linkserver.history.api_tokens import MemoryTokenTable, TokenTable
from linkserver.history.base import HistoryPage, HistoryQuery, HistoryStore
from linkserver.history.codec import check_acknowledgement, check_event, encode_data
from linkserver.history.device_owners import DeviceOwnerTable, MemoryDeviceOwnerTable
from linkserver.history.failures import FailureTable, MemoryFailureTable
from linkserver.history.matching import compile_query, encode_cursor, id_bounds
from linkserver.history.nodes import MemoryNodeLeases, NodeLeases
from linkserver.history.outbox import MemoryOutbox, Outbox
from linkserver.history.same_commit import SameCommit
from linkserver.history.sessions import MemorySessionTable, SessionTable
from linkserver.history.tree import StoredContext
from linkserver.history.users import MemoryUserStore, UserStore

log = logging.getLogger("linkserver.history")


class MemoryHistoryStore(HistoryStore):
    """Thread-safe; events live in a dict plus a sorted list of ids."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._events: dict[int, tuple[Event, bool]] = {}
        self._ids: list[int] = []
        self._running = False
        self._stopped = False
        self._contexts: dict[str, StoredContext] = {}
        self._tree_seq = 0
        self._users = MemoryUserStore()
        self._sessions = MemorySessionTable()
        self._device_owners = MemoryDeviceOwnerTable()
        self._login_failures = MemoryFailureTable()
        self._api_tokens = MemoryTokenTable()
        self._same_commit: list[SameCommit] = []
        self._node_leases = MemoryNodeLeases()

    @property
    def users(self) -> UserStore:
        return self._users

    @property
    def sessions(self) -> SessionTable:
        return self._sessions

    @property
    def device_owners(self) -> DeviceOwnerTable:
        return self._device_owners

    @property
    def login_failures(self) -> FailureTable:
        return self._login_failures

    @property
    def api_tokens(self) -> TokenTable:
        return self._api_tokens

    def start(self) -> None:
        with self._lock:
            if self._stopped:
                raise ServerStopped("this history store was stopped; create a new one")
            self._running = True

    def stop(self, timeout: float | None = None) -> None:
        with self._lock:
            self._running = False
            self._stopped = True

    def append(
        self,
        event: Event,
        *,
        requires_acknowledgement: bool = False,
        checked: bool = False,
        waiting: bool = False,
        hurry: bool = False,
    ) -> Future[Event]:
        check_event(event)
        encode_data(event.data)  # the same data the SQL store refuses is refused here
        with self._lock:
            if not self._running:
                raise ServerStopped("history is not running; the event was not stored")
            if event.id in self._events:
                failed: Future[Event] = Future()
                failed.set_exception(HistoryError(f"the database rejected event {event.id}: duplicate id"))
                return failed
            stored = event.evolve(acknowledgements=())
            self._events[event.id] = (stored, bool(requires_acknowledgement))
            if not self._ids or event.id > self._ids[-1]:
                self._ids.append(event.id)
            else:
                bisect.insort(self._ids, event.id)
            for hook in self._same_commit:  # under the lock: nobody sees the event without its work
                try:
                    hook.committed((stored,))
                except Exception:  # as in the SQL writer: the event is stored, its future completes
                    log.exception("a same-commit hook failed after the commit")
        future: Future[Event] = Future()
        future.set_result(event)
        return future

    def add_same_commit(self, hook: SameCommit) -> None:
        """See :meth:`HistoryStore.add_same_commit`; the memory store only calls ``committed``."""
        with self._lock:
            self._same_commit.append(hook)

    def outbox(self, bridge: str, node: int) -> Outbox:
        return MemoryOutbox(bridge, node)

    def node_leases(self) -> NodeLeases:
        return self._node_leases

    def flush(self, timeout: float | None = None) -> None:
        return None

    def get(self, event_id: int) -> Event:
        with self._lock:
            try:
                return self._events[event_id][0]
            except KeyError:
                raise EventNotFound(event_id) from None

    def query(self, query: HistoryQuery) -> HistoryPage:
        test = compile_query(query, with_bounds=False)
        low, high = id_bounds(query)
        with self._lock:
            ids = self._ids
            start = 0 if low is None else bisect.bisect_left(ids, low)
            stop = len(ids) if high is None else bisect.bisect_left(ids, high)
            window = ids[start:stop]
            events = self._events
        ordered = reversed(window) if query.newest_first else iter(window)
        found: list[Event] = []
        for event_id in ordered:
            entry = events.get(event_id)
            if entry is not None and test(*entry):
                found.append(entry[0])
                if len(found) > query.limit:
                    break
        page = tuple(found[: query.limit])
        more = len(found) > query.limit
        return HistoryPage(events=page, next_cursor=encode_cursor(page[-1].id) if more else None)

    def count(self, query: HistoryQuery) -> int:
        test = compile_query(attrs.evolve(query, cursor=None))
        with self._lock:
            entries = list(self._events.values())
        return sum(1 for entry in entries if test(*entry))

    def acknowledge(self, event_id: int, acknowledgement: Acknowledgement) -> Event:
        check_acknowledgement(acknowledgement)
        with self._lock:
            event, requires_ack = self._events.get(event_id, (None, False))
            if event is None:
                raise EventNotFound(event_id)
            acks = sorted((*event.acknowledgements, acknowledgement), key=lambda a: a.time)
            event = event.evolve(acknowledgements=tuple(acks))
            self._events[event_id] = (event, requires_ack)
            return event

    def delete(self, event_id: int) -> None:
        with self._lock:
            if self._events.pop(event_id, None) is None:
                raise EventNotFound(event_id)
            index = bisect.bisect_left(self._ids, event_id)
            del self._ids[index]

    def purge_expired(self, now: datetime, batch_size: int = 5000) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        removed = 0
        while True:
            with self._lock:  # one bounded batch per lock hold, like the SQL store's transactions
                expired = [
                    event_id
                    for event_id, (event, _) in self._events.items()
                    if event.expires is not None and event.expires <= now
                ][:batch_size]
                for event_id in expired:
                    del self._events[event_id]
                if expired:
                    gone = set(expired)
                    self._ids = [i for i in self._ids if i not in gone]
            removed += len(expired)
            if len(expired) < batch_size:
                return removed

    # -- the run-time tree ----------------------------------------------------------

    def save_contexts(self, contexts: Sequence[StoredContext]) -> int:
        with self._lock:
            if not self._running:
                raise ServerStopped("history is not running; the tree change was not recorded")
            for context in contexts:
                self._tree_seq += 1
                self._contexts[context.path] = attrs.evolve(context, seq=self._tree_seq)
            return self._tree_seq

    def load_contexts(self, after: int = 0) -> list[StoredContext]:
        with self._lock:
            return sorted((c for c in self._contexts.values() if c.seq > after), key=lambda c: c.seq)
