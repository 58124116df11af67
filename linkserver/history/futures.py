"""A cheaper ``concurrent.futures.Future`` for the writer's one-per-event futures.

A plain Future builds a ``threading.Condition`` (an RLock, a deque, bound
methods) at once and takes it three times in its life. Most history futures
are never waited on (a fire that is not durable drops it), yet that was a
third of the cost of a persistent fire. :class:`StoredFuture` is a real
Future subclass (``isinstance``, ``result``, ``add_done_callback``,
``concurrent.futures.wait`` all work) that starts RUNNING (it cannot be
cancelled: the event will be written) and creates its condition only when
someone first waits. Callbacks need no condition either: they go in a list
that whoever finds the future finished drains, each callback popped (an
atomic step) by exactly one thread, so a callback added while the writer
completes the future runs once, in one of the two threads. ``exception()``
of a finished future, like ``result()``, reads it without a lock. Its
``result(timeout)``, on a future not yet finished, first calls the writer's
hurry hook with the timeout: a waiter makes the commit happen now
(:mod:`linkserver.history.writer`) instead of after the writer's linger, and
within its timeout; the wait after the hook gets what is left of it, so
``result(timeout)`` returns or raises within about ``timeout`` in all.
(``concurrent.futures.wait`` and ``add_done_callback`` do not hurry.)
:func:`complete` sets the results of a batch without conditions where nobody
ever asked, and ``result()`` of a finished future reads it without one.

It relies on the attribute names of CPython's Future (``_condition``,
``_state``, ``_result``), unchanged from 3.8 to 3.13; :data:`LAZY` is False
and plain Futures are used if they ever differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import _base as futures_base
from typing import Any


def _has_expected_internals() -> bool:
    probe: Future[Any] = Future()
    names = ("_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks")
    return all(hasattr(probe, name) for name in (*names, "_invoke_callbacks")) and all(
        hasattr(futures_base, name) for name in ("RUNNING", "FINISHED", "LOGGER")
    )


LAZY = _has_expected_internals()


#: ``hurry(future, timeout)``: called before a wait for ``future`` of at most ``timeout`` seconds
#: (None: no limit); it must return within about ``timeout``.
Hurry = Callable[[Future[Any], "float | None"], None]


class StoredFuture(Future):  # type: ignore[type-arg]
    """A RUNNING Future whose condition is made on first use; waiting hurries its writer."""

    def __init__(self, hurry: Hurry | None = None) -> None:
        # Deliberately no super().__init__(): that builds the condition.
        # _condition, _waiters and _done_callbacks are made on first use (__getattr__):
        # the garbage collector has three objects fewer to track per queued event.
        self._state = futures_base.RUNNING
        self._result = None
        self._exception = None
        self._hurry = hurry

    def result(self, timeout: float | None = None) -> Any:
        # Most are read after the commit: skip the condition then (a plain attribute read).
        if self._state == futures_base.FINISHED:
            if self._exception is None:
                return self._result
        elif self._hurry is not None:
            timeout = _hurried(self, self._hurry, timeout)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state == futures_base.FINISHED:
            return self._exception  # type: ignore[no-any-return]
        return super().exception(timeout)

    def done(self) -> bool:
        # RUNNING or FINISHED, nothing else (it cannot be cancelled): no condition needed.
        return self._state == futures_base.FINISHED

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        # Append, then look at the state; complete() sets the state, then drains. Whichever
        # runs second sees the other's step, and pop() hands each callback to one thread.
        self._done_callbacks.append(fn)
        if self._state == futures_base.FINISHED:
            self._invoke_callbacks()

    def _invoke_callbacks(self) -> None:
        callbacks = self.__dict__.get("_done_callbacks")
        while callbacks:
            try:
                callback = callbacks.pop(0)
            except IndexError:  # another thread took the last one
                return
            try:
                callback(self)
            except Exception:
                futures_base.LOGGER.exception("exception calling callback for %r", self)

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not yet in __dict__: the condition and its two lists.
        make = _LAZY.get(name)
        if make is None:
            raise AttributeError(name)
        # setdefault is atomic: of two threads making one, both get the one stored first.
        return self.__dict__.setdefault(name, make())


_LAZY: dict[str, Callable[[], Any]] = {
    "_condition": threading.Condition,
    "_waiters": list,
    "_done_callbacks": list,
}


class _PlainStoredFuture(Future):  # type: ignore[type-arg]
    """The fallback where Future's internals differ: a plain Future that hurries when waited on."""

    def __init__(self, hurry: Hurry | None = None) -> None:
        super().__init__()
        self.set_running_or_notify_cancel()
        self._hurry = hurry

    def result(self, timeout: float | None = None) -> Any:
        if self._hurry is not None and not self.done():
            timeout = _hurried(self, self._hurry, timeout)
        return super().result(timeout)


def _hurried(future: Future[Any], hurry: Hurry, timeout: float | None) -> float | None:
    """Call ``hurry``; what is left of ``timeout`` for the wait after it."""
    if timeout is None:
        hurry(future, None)
        return None
    deadline = time.monotonic() + timeout
    hurry(future, timeout)
    return max(0.0, deadline - time.monotonic())


def new_future(hurry: Hurry | None = None) -> Future[Any]:
    """A running future for one queued event; ``hurry(future, timeout)`` runs before a wait for
    it (see :data:`Hurry`)."""
    if LAZY:
        return StoredFuture(hurry)
    return _PlainStoredFuture(hurry)


def complete(pairs: Iterable[tuple[Future[Any], Any]]) -> None:
    """``future.set_result(result)`` for each pair, without a lock for futures nobody has
    looked at yet (no waiter or callback can exist without their condition).

    No lock is shared with the firers: the result and the state are set first, then
    the condition is looked for. A waiter stores its new condition first and then
    reads the state under it, so either this sees the condition and notifies, or the
    waiter sees the state FINISHED and does not wait.
    """
    if not LAZY:
        for future, result in pairs:
            future.set_result(result)
        return
    finished = futures_base.FINISHED
    for future, result in pairs:
        future._result = result  # type: ignore[attr-defined]
        future._state = finished  # type: ignore[attr-defined]
        found = future.__dict__
        condition = found.get("_condition")
        if condition is not None:
            with condition:
                for waiter in future._waiters:  # type: ignore[attr-defined]
                    waiter.add_result(future)
                condition.notify_all()
        if condition is not None or found.get("_done_callbacks"):
            future._invoke_callbacks()  # type: ignore[attr-defined]
