"""Failed logins and unknown tokens counted per key, shared by the nodes of one database.

The back-off for guessers (linkserver/net/throttle.py) keeps, per rule
(``user``, ``address``, ``token``) and key (a user name, a network address),
how many failures there were, the last one and until when the key is
locked. In a table every node reads and writes, a guesser spread over
several nodes gets no more attempts than against one. Times are wall-clock
(the nodes of a cluster have synchronised clocks).

Every implementation passes the contract suite in ``tests/history/test_failures_store.py``.
"""

from __future__ import annotations

import abc
import threading
from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class FailureCount:
    failures: int
    last: datetime
    locked_until: datetime


class FailureTable(abc.ABC):
    """The failure counts of one history database. Thread-safe; each method one short transaction."""

    @abc.abstractmethod
    def get(self, rule: str, key: str) -> FailureCount | None:
        """The count of ``key`` under ``rule``, if any."""

    @abc.abstractmethod
    def put(self, rule: str, key: str, count: FailureCount) -> None:
        """Record ``count`` for ``key`` under ``rule`` (replacing what was there)."""

    @abc.abstractmethod
    def forget(self, rule: str, key: str) -> None:
        """Drop the count of ``key`` under ``rule``."""

    @abc.abstractmethod
    def forget_before(self, when: datetime) -> int:
        """Drop every count whose last failure and lock are both before ``when``; returns how many."""


class MemoryFailureTable(FailureTable):
    """Counts in a dict, at most ``max_keys`` (the ones idle longest go first, so a flood of
    made-up names cannot fill the memory)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._rows: dict[tuple[str, str], FailureCount] = {}
        self._lock = threading.Lock()

    def get(self, rule: str, key: str) -> FailureCount | None:
        with self._lock:
            return self._rows.get((rule, key))

    def put(self, rule: str, key: str, count: FailureCount) -> None:
        with self._lock:
            self._rows.pop((rule, key), None)  # re-inserted last: the dict's order is idleness
            self._rows[(rule, key)] = count
            if len(self._rows) > self.max_keys:
                self._rows.pop(next(iter(self._rows)))

    def forget(self, rule: str, key: str) -> None:
        with self._lock:
            self._rows.pop((rule, key), None)

    def forget_before(self, when: datetime) -> int:
        with self._lock:
            gone = [k for k, c in self._rows.items() if max(c.last, c.locked_until) < when]
            for key in gone:
                del self._rows[key]
            return len(gone)
