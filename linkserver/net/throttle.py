"""Back-off for guessers: failures counted per key (a user name, a network address).

A key may fail ``free`` times; each failure after that locks it for a delay
that starts at ``first_delay`` and doubles with every further failure, up
to ``max_delay``. While a key is locked, attempts are refused at once (HTTP
429 with ``Retry-After``) without looking at the password or token, so a
locked guesser learns nothing. A key's failures are forgotten
``forget_after`` without a failure once its lock is over; a successful
login forgets a user name's failures. The counts are kept in the history
database, shared by every node on it; in memory at most ``max_keys`` keys
are kept (the ones idle longest go first), so a flood of made-up names
cannot fill the memory (the purge drops old rows from the table).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

from linkserver.history.failures import FailureCount, FailureTable, MemoryFailureTable


@attrs.frozen(kw_only=True)
class ThrottleRule:
    """How many failures are free, and the back-off after them (seconds)."""

    free: int = 5
    first_delay: float = 1.0
    max_delay: float = 900.0
    forget_after: float = 3600.0


@attrs.define
class _Key:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Throttle:
    """Failure counts and locks of many keys under one rule. Thread-safe.

    The counts live in ``table`` under the rule's ``name``: the history
    database's, shared by every node on it (a guesser spread over the nodes of
    a cluster gets no more attempts than against one), or one in memory.
    ``clock`` is wall-clock seconds (nodes compare their times).
    """

    def __init__(
        self,
        rule: ThrottleRule,
        *,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
        table: FailureTable | None = None,
        name: str = "throttle",
    ) -> None:
        self.rule = rule
        self.name = name
        self._clock = clock
        self._table = table if table is not None else MemoryFailureTable(max_keys)
        self._lock = threading.Lock()

    def _get(self, key: str) -> _Key | None:
        count = self._table.get(self.name, key)
        if count is None:
            return None
        return _Key(count.failures, count.last.timestamp(), count.locked_until.timestamp())

    def retry_after(self, key: str | None) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        if key is None:
            return 0.0
        entry = self._get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.locked_until - self._clock())

    def failed(self, key: str | None) -> float:
        """Count a failure of ``key``; returns the lock it now has (0: none yet)."""
        if key is None:
            return 0.0
        now = self._clock()
        with self._lock:
            entry = self._get(key)
            if entry is None or now - max(entry.last, entry.locked_until) > self.rule.forget_after:
                entry = _Key()
            entry.failures += 1
            entry.last = now
            beyond = entry.failures - self.rule.free
            if beyond >= 0:
                delay = min(self.rule.max_delay, self.rule.first_delay * 2 ** min(beyond, 40))
                entry.locked_until = now + delay
            count = FailureCount(
                failures=entry.failures, last=_time(entry.last), locked_until=_time(entry.locked_until)
            )
            self._table.put(self.name, key, count)
            return max(0.0, entry.locked_until - now)

    def succeeded(self, key: str | None) -> None:
        """Forget ``key``'s failures."""
        if key is not None:
            self._table.forget(self.name, key)

    def failures(self, key: str) -> int:
        entry = self._get(key)
        return entry.failures if entry is not None else 0
