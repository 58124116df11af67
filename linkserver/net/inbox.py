"""A WebSocket connection's messages, handled in order by a thread of the connection's own.

The event loop reads messages and :meth:`Inbox.put` s them; a worker thread
takes them out in order and handles them (handling may block: firing waits
when history's queue is full, a synchronous listener runs in the firer's
thread). Putting is a deque append, plus a lock release when the worker is
asleep: no task, no thread pool round trip, and nothing sent back to the
loop when a message is done (answers reach the loop through the session's
outbox). A client keeping many single fires in flight therefore costs no
thread hop per message, nor per burst.

The worker starts with the first message and ends after ``idle`` seconds
without one (an idle subscriber's connection holds no thread); the next
message starts another. :meth:`Inbox.close` makes the worker handle what was
put so far and end; it returns the thread to join. So the server runs one
thread per connection that sent something in the last ``idle`` seconds:
bounded by its connections, each of which already holds a socket and a
session. A thread of its own also means that one connection blocked in a
handler (history's queue full, a slow synchronous listener) never holds up
another connection's messages, as a bounded shared pool would.

Waking without lost wake-ups: the worker announces ``sleeping`` and then
looks at the deque; :meth:`put` appends and then looks at ``sleeping``.
Whichever comes second sees the other's step. Decisions about ``sleeping``
and the thread are taken under ``_guard``, so that every release of the wake
lock is matched by one acquire.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("linkserver.net")

T = TypeVar("T")
IDLE_SECONDS = 5.0


class Inbox(Generic[T]):
    """Items handled in order by ``handle`` in a worker thread. ``put`` and ``close`` are
    called from one thread (the event loop)."""

    def __init__(self, handle: Callable[[T], None], name: str, idle: float = IDLE_SECONDS) -> None:
        self._handle = handle
        self._name = name
        self._idle = idle
        self._items: collections.deque[T] = collections.deque()
        self._guard = threading.Lock()
        self._wake = threading.Lock()
        self._wake.acquire()  # held: nothing to wake for
        self._sleeping = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        self._items.append(item)
        if self._sleeping or self._thread is None:  # else the worker is busy and will see it
            with self._guard:
                if self._sleeping:
                    self._sleeping = False
                    self._wake.release()
                elif self._thread is None and not self._closed:
                    self._start()

    def close(self) -> threading.Thread | None:
        """No more items; the worker handles those put so far, then ends. Returns the worker
        to join, or None if there is none."""
        with self._guard:
            self._closed = True
            thread = self._thread
            if self._sleeping:
                self._sleeping = False
                self._wake.release()
        return thread

    def _start(self) -> None:  # _guard held
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        items, handle = self._items, self._handle
        while True:
            while items:
                try:
                    handle(items.popleft())
                except Exception:  # handle answers errors itself: this is a bug, not the client's
                    log.exception("handling a WebSocket message failed")
            with self._guard:
                self._sleeping = True
                if items:  # put before it saw the flag
                    self._sleeping = False
                    continue
                if self._closed:
                    self._thread = None
                    self._sleeping = False
                    return
            if self._wake.acquire(timeout=self._idle):
                continue  # woken by put or close (which cleared the flag)
            with self._guard:
                if not self._sleeping:  # woken just as the wait timed out: take the release
                    self._wake.acquire()
                    continue
                if items:  # put, its owner waiting for _guard: it will find the worker awake
                    self._sleeping = False
                    continue
                # Idle: the next put starts another. The thread goes before the flag, so a put
                # that sees the flag down also sees the thread gone.
                self._thread = None
                self._sleeping = False
                return
