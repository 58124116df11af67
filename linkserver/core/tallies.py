"""Counters cheap enough for the hot paths, read by the metrics at scrape time.

A :class:`Tally` is one ``next()`` of an :class:`itertools.count` to add:
a single C call, atomic under the GIL, so firing threads count without a
lock and without losing increments. :class:`Buckets` is a histogram for
one thread (the history writer): a ``bisect`` and two additions.

Nothing here knows Prometheus; :mod:`linkserver.server.metrics` turns
these into metric families only when someone asks.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence


def count_value(counter: itertools.count[int]) -> int:
    """How many times ``next(counter)`` was called on a ``count()`` that started at 0."""
    return int(repr(counter)[6:-1])  # "count(N)": the only public view of its state


class Tally:
    """A thread-safe counter: :meth:`add` from any thread, :attr:`value` to read."""

    __slots__ = ("_counter", "add")

    def __init__(self) -> None:
        self._counter = itertools.count()
        counter = self._counter
        self.add = lambda: next(counter)  # bound once: the cheapest call there is

    @property
    def value(self) -> int:
        return count_value(self._counter)

    def __repr__(self) -> str:
        return f"<Tally {self.value}>"


class Buckets:
    """A histogram with fixed upper bounds, observed by ONE thread and read by any.

    ``counts[i]`` is the number of observations in ``(bounds[i-1], bounds[i]]``,
    the last slot counting those above every bound. A reader sees each field
    as it was at some moment; the fields may be an observation apart.
    """

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"bounds must be increasing and not empty, got {list(bounds)}")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= bound)`` per bound, then ``(inf, all)``."""
        running, out = 0, []
        for bound, count in zip((*self.bounds, float("inf")), list(self.counts), strict=True):
            running += count
            out.append((bound, running))
        return out


def level_counters(levels: int = 6) -> tuple[itertools.count[int], ...]:
    """One ``count()`` per level value (``Level`` is 0..5), indexed by the level itself."""
    return tuple(itertools.count() for _ in range(levels))
