"""Progress of long command-line operations, shown on a terminal and never in a pipe.

A :class:`Progress` writes one line to stderr that it rewrites in place
(``\\r``), at most every ``interval`` seconds, and clears when done. When
stderr is not a terminal it writes nothing at all, so scripts, pipes and
log files see only the command's own output.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """``what: done/total (pct%) note`` on a terminal's stderr; silent elsewhere.

    ``total`` None shows the count alone. Thread-safe; use as a context
    manager or call :meth:`close`. ``ticking`` redraws every ``interval``
    on its own (with the elapsed time) for a step that reports nothing
    while it runs, such as one server call.
    """

    def __init__(
        self,
        what: str,
        total: int | None = None,
        *,
        stream: TextIO | None = None,
        interval: float = 0.1,
        ticking: bool = False,
    ) -> None:
        self.what = what
        self.total = total
        self.done = 0
        self.note = ""
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _is_terminal(self.stream)
        self.interval = interval
        self._started = time.monotonic()
        self._drawn = 0.0
        self._width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.enabled and ticking:
            self._ticker = threading.Thread(target=self._tick, name="linkserver-progress", daemon=True)
            self._draw()  # at once: the step may be over before the first tick
            self._ticker.start()

    def advance(self, count: int = 1, note: str | None = None) -> None:
        self.update(self.done + count, note)

    def update(self, done: int, note: str | None = None, total: int | None = None) -> None:
        with self._lock:
            self.done = done
            if note is not None:
                self.note = note
            if total is not None:
                self.total = total
            if self.enabled and time.monotonic() - self._drawn >= self.interval:
                self._draw()

    def close(self) -> None:
        """Clear the line (the command then prints its own summary)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            if self.enabled and self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
                self._width = 0
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self) -> str:
        """The text shown now."""
        if self.total:
            count = f"{self.done}/{self.total} ({100 * self.done // self.total}%)"
        elif self.total is None and self.done:
            count = str(self.done)
        else:
            count = ""
        elapsed = time.monotonic() - self._started
        parts = [
            f"{self.what}:",
            count,
            self.note,
            f"{elapsed:.1f} s" if self._ticker or elapsed >= 1 else "",
        ]
        return " ".join(p for p in parts if p)

    def _draw(self) -> None:
        text = self.line()
        columns = _columns(self.stream)
        if len(text) >= columns:
            text = text[: columns - 1]
        self.stream.write("\r" + text + " " * max(0, self._width - len(text)))
        self.stream.flush()
        self._width = len(text)
        self._drawn = time.monotonic()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self.enabled:
                    self._draw()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _columns(stream: TextIO) -> int:
    import os

    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, AttributeError, ValueError):
        return 80
