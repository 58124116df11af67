"""A cheaper ``concurrent.futures.Future`` for the writer's one-per-event futures.

A plain Future builds a ``threading.Condition`` (an RLock, a deque, bound
methods) at once and takes it three times in its life. Most history futures
are never waited on (a fire that is not durable drops it), yet that was a
third of the cost of a persistent fire. :class:`StoredFuture` is a real
Future subclass (``isinstance``, ``result``, ``add_done_callback``,
``concurrent.futures.wait`` all work) that starts RUNNING (it cannot be
cancelled: the event will be written) and creates its condition only when
someone first asks for it. :func:`complete` sets the result without a
condition if nobody ever asked.

It relies on the attribute names of CPython's Future (``_condition``,
``_state``, ``_result``), unchanged from 3.8 to 3.13; :data:`LAZY` is False
and plain Futures are used if they ever differ.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import _base as futures_base
from typing import Any

_CREATE = threading.Lock()


def _has_expected_internals() -> bool:
    probe: Future[Any] = Future()
    names = ("_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks")
    return all(hasattr(probe, name) for name in names) and all(
        hasattr(futures_base, name) for name in ("RUNNING", "FINISHED")
    )


LAZY = _has_expected_internals()


class StoredFuture(Future):  # type: ignore[type-arg]
    """A RUNNING Future whose condition is made on first use."""

    def __init__(self) -> None:  # deliberately no super().__init__(): that builds the condition
        self._state = futures_base.RUNNING
        self._result = None
        self._exception = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not yet in __dict__: here, the condition.
        if name != "_condition":
            raise AttributeError(name)
        with _CREATE:
            condition = self.__dict__.get("_condition")
            if condition is None:
                condition = self.__dict__["_condition"] = threading.Condition()
        return condition


def new_future() -> Future[Any]:
    """A running future for one queued event."""
    if LAZY:
        return StoredFuture()
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    return future


def complete(future: Future[Any], result: Any) -> None:
    """``future.set_result(result)``, skipping the condition if nobody has looked yet."""
    if LAZY and "_condition" not in future.__dict__:
        with _CREATE:
            if "_condition" not in future.__dict__:
                # Nobody waits, and no callback or waiter can exist without the condition.
                future._result = result  # type: ignore[attr-defined]
                future._state = futures_base.FINISHED  # type: ignore[attr-defined]
                return
    future.set_result(result)
