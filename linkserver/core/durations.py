"""Durations written as ``10d``, ``6h``, ``30m``, ``45s`` (and combinations like ``1d12h``)."""

from __future__ import annotations

import re
from datetime import timedelta

from linkserver.core.errors import LinkServerError

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_MAX_SECONDS = 100 * 365 * 86400
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")


class InvalidDuration(LinkServerError, ValueError):
    """A duration is not written as a number with a unit."""


def parse_duration(value: object) -> timedelta:
    """Parse ``10d``/``6h``/``30m``/``45s``/``1d12h`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 0 <= value <= _MAX_SECONDS:  # also false for NaN
            raise InvalidDuration(f"duration {value!r} is not between 0 and {_MAX_SECONDS} seconds")
        return timedelta(seconds=value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidDuration(f"invalid duration {value!r}: write it like 10d, 6h, 30m or 45s")
    text = value.strip().replace(" ", "")
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise InvalidDuration(f"invalid duration {value!r}: write it like 10d, 6h, 30m, 45s or 1d12h")
    if seconds > _MAX_SECONDS:
        raise InvalidDuration(f"duration {value!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest ``1d12h``-style spelling of a duration."""
    total = int(delta.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
