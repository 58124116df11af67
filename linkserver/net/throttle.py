"""Back-off for guessers: failures counted per key (a user name, a network address).

A key may fail ``free`` times; each failure after that locks it for a delay
that starts at ``first_delay`` and doubles with every further failure, up
to ``max_delay``. While a key is locked, attempts are refused at once (HTTP
429 with ``Retry-After``) without looking at the password or token, so a
locked guesser learns nothing. A key's failures are forgotten
``forget_after`` without a failure once its lock is over; a successful
login forgets a user name's failures. At most ``max_keys`` keys are kept
(the ones idle longest go first), so a flood of made-up names cannot fill
the memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs


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


class Throttle:
    """Failure counts and locks of many keys under one rule. Thread-safe."""

    def __init__(
        self, rule: ThrottleRule, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.rule = rule
        self._clock = clock
        self._max_keys = max_keys
        self._keys: dict[str, _Key] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str | None) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        if key is None:
            return 0.0
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return 0.0
            return max(0.0, entry.locked_until - self._clock())

    def failed(self, key: str | None) -> float:
        """Count a failure of ``key``; returns the lock it now has (0: none yet)."""
        if key is None:
            return 0.0
        now = self._clock()
        with self._lock:
            entry = self._keys.pop(key, None)  # re-inserted last: the dict's order is idleness
            if entry is None or now - max(entry.last, entry.locked_until) > self.rule.forget_after:
                entry = _Key()
            entry.failures += 1
            entry.last = now
            beyond = entry.failures - self.rule.free
            if beyond >= 0:
                delay = min(self.rule.max_delay, self.rule.first_delay * 2 ** min(beyond, 40))
                entry.locked_until = now + delay
            self._keys[key] = entry
            if len(self._keys) > self._max_keys:
                self._keys.pop(next(iter(self._keys)))
            return max(0.0, entry.locked_until - now)

    def succeeded(self, key: str | None) -> None:
        """Forget ``key``'s failures."""
        if key is not None:
            with self._lock:
                self._keys.pop(key, None)

    def failures(self, key: str) -> int:
        with self._lock:
            entry = self._keys.get(key)
            return entry.failures if entry is not None else 0
