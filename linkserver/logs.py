"""Log output of the ``linkserver`` commands: text lines, or JSON lines for log collectors.

``--log-format json`` (or ``server.log_format: json`` for ``linkserver
serve``) writes one JSON object per line to stderr::

    {"time": "2026-12-01T23:40:01.123Z", "level": "INFO", "logger": "linkserver.serve",
     "message": "LinkServer 0.1.0 listening on ...", "thread": "MainThread"}

plus ``exception`` (the formatted traceback) when there is one and every
``extra=`` field the call passed. Lines never span lines: newlines inside
messages are escaped by JSON.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, keys in a fixed order."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    if kind not in FORMATS:
        raise ValueError(f"log format {kind!r}: expected one of {', '.join(FORMATS)}")
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: int, kind: str = "text") -> None:
    """Log ``level`` and above to stderr in format ``kind``, like ``logging.basicConfig``: only
    when logging has no handler yet (an application or test runner embedding us keeps its own)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    handler._linkserver = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def use_format(kind: str) -> None:
    """Switch the handler :func:`configure` installed (if it did) to format ``kind``."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_linkserver", False):
            handler.setFormatter(formatter(kind))
