"""Ctrl-C in a live view: it stops on a flag, never by an exception through the client.

Shared by the admin shell (``watch``, ``alarms --live``) and the CLI (``linkserver
watch``, ``linkserver status --watch``); it sits below both, which never import each
other.

Python's default SIGINT handler raises KeyboardInterrupt in the main thread at
whatever bytecode it happens to run. A live view spends its time in the
client's ``Subscription.get``, that is in ``queue.Queue.get`` and
``Condition.wait``: an interrupt landing between a lock's release and the
``try`` that takes it back leaves it released twice ("RuntimeError: release
unlocked lock" instead of "stopped watching", a traceback on the CLI's exit),
and one landing in ``Subscription.close`` leaves its reader thread and the
server's subscription behind. Pressing Ctrl-C several times makes the
second interrupt land in the cleanup of the first.

So the shell (and, for its one live view, the CLI) decides what a SIGINT does:

- while a command line runs (:func:`command`), Ctrl-C raises
  KeyboardInterrupt as before, so a one-shot command stays interruptible;
- once the command enters a live view (:func:`live_view`), and until the
  command ends, Ctrl-C only sets the view's ``stop`` event, which its loop
  checks between waits of at most a quarter of a second: the loop ends, the
  subscription closes and its thread ends, uninterrupted;
- outside :func:`command` (the CLI, a shell driven by a program) Ctrl-C sets the
  ``stop`` only within the live view, and raises KeyboardInterrupt before and after;
- between commands of the interactive shell (:func:`handling` is in force
  for the whole session) Ctrl-C does nothing; at the prompt prompt-toolkit
  reads it as a key (the terminal is raw there; its own SIGINT handler is not
  installed, see shell/app.py).

Signal handlers belong to the main thread: elsewhere these change nothing
and :func:`live_view`'s event is set by nobody.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["TICK", "command", "handling", "live_view", "pause"]

TICK = 0.25  # the longest a live view waits before it looks at its stop flag again


class _State:
    """What the handler reads (only the main thread changes it)."""

    def __init__(self) -> None:
        self.installed = False  # our handler is SIGINT's
        self.running = False  # a command line runs: Ctrl-C interrupts it ...
        self.stop: threading.Event | None = None  # ... unless it went live: Ctrl-C sets this


_state = _State()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    stop = _state.stop
    if stop is not None:
        stop.set()
    elif _state.running:
        raise KeyboardInterrupt


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """The shell's SIGINT handler in place within (nested: the outermost one restores)."""
    if _state.installed or not _in_main_thread():
        yield
        return
    previous: Any = signal.signal(signal.SIGINT, _on_sigint)
    _state.installed = True
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state.installed = False


@contextlib.contextmanager
def command() -> Iterator[None]:
    """Around one command line: Ctrl-C interrupts it, until it enters a live view."""
    if not _in_main_thread() or _state.running:
        yield
        return
    with handling():
        _state.running, _state.stop = True, None
        try:
            yield
        finally:
            _state.running, _state.stop = False, None


@contextlib.contextmanager
def live_view() -> Iterator[threading.Event]:
    """A live view's ``stop``: set by Ctrl-C from now until the command ends (see the module doc).

    Outside :func:`command` (a shell driven by a program) Ctrl-C sets it only within.
    """
    stop = threading.Event()
    if not _in_main_thread():
        yield stop
        return
    with handling():
        outer = _state.stop
        _state.stop = stop
        try:
            yield stop
        finally:
            if not _state.running:  # no command around to keep Ctrl-C a flag until its end
                _state.stop = outer


def pause(stop: threading.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less once ``stop`` is set (looked at every :data:`TICK`); True if it was.

    Never ``stop.wait()`` in the main thread: the handler sets ``stop`` in that thread,
    and a SIGINT landing while the wait holds the event's lock would deadlock on it.
    """
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(TICK, left))
    return True
