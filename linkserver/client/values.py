"""Command-line ``key=value`` data typed by an event definition's fields (as ``GET /contexts`` gives them)."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from linkserver.core.durations import parse_duration
from linkserver.core.errors import LinkServerError

TRUE = frozenset({"true", "yes", "on", "1"})
FALSE = frozenset({"false", "no", "off", "0"})


class UsageError(LinkServerError, ValueError):
    """The command line is wrong (exit code 2)."""


def parse_value(text: str, field: Mapping[str, Any] | None, name: str = "") -> Any:
    """``text`` as the type of ``field`` (None: a JSON number/boolean/null if it is one, else the text).

    ``null`` is None for nullable fields. On a coded field (``labels``, as ``GET /contexts``
    gives them) a label is its stored value: on a string field a label wins over the same
    text taken literally, on an integer field a whole number is that number (see
    :func:`labelled_value`). Raises UsageError naming the field (and its labels, for a
    value that is neither valid nor one of them).
    """
    label = f"{name or (field or {}).get('name', '?')}"
    if not is_text(text):
        raise UsageError(f"{label}: the value is not text (bytes that are not UTF-8?)")
    if field is None:
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{label}={text!r} is not a finite number")
        return value if not isinstance(value, (dict, list, str)) else text
    kind = str(field.get("type", "string")).lower()
    if text == "null" and field.get("nullable"):
        return None
    labels = field_labels(field)
    try:
        if kind == "string":
            allowed = field.get("allowed")
            closed = bool(labels) and isinstance(allowed, list) and text not in allowed
            return labelled_value(text, labels, label, "one of the allowed values" if closed else None)
        if kind == "integer":
            if labels and not _whole_number(text):
                return labelled_value(text, labels, label, "a whole number")
            return int(text)
        if kind == "float":
            number = float(text)
            if not math.isfinite(number):
                raise UsageError(f"{label}={text!r} is not a finite number")
            return number
        if kind == "boolean":
            lowered = text.strip().lower()
            if lowered in TRUE:
                return True
            if lowered in FALSE:
                return False
            raise ValueError
        if kind == "datetime":
            return _datetime(text)
        if kind == "table":
            value = loads_strict(text)
            if not isinstance(value, list):
                raise ValueError
            return value
    except UsageError:
        raise
    except ValueError:
        raise UsageError(f"{label}={text!r} is not {_describe(kind)}") from None
    return text


def field_labels(field: Mapping[str, Any]) -> list[tuple[Any, str]]:
    """A field's value labels as ``(value, label)`` pairs (the wire's ``[{value, label}]``)."""
    found = field.get("labels")
    if not isinstance(found, list):
        return []
    return [
        (item["value"], item["label"])
        for item in found
        if isinstance(item, Mapping) and "value" in item and isinstance(item.get("label"), str)
    ]


def labelled_value(text: str, labels: Sequence[tuple[Any, str]], name: str, expected: str | None) -> Any:
    """The stored value ``text`` stands for on a coded field: the value it is the label of,
    else ``text`` itself when it is a valid value as it is (``expected`` None), else
    UsageError: ``text`` is not ``expected`` (``"a whole number"``) or a label, listing them.

    A label wins over the same text taken literally: the definition loader refuses a label
    that is also a labelled value, so a label can only hide text that is none of the codes."""
    for value, known in labels:
        if known == text:
            return value
    if expected is None:
        return text
    raise UsageError(f"{name}={text!r} is not {expected} or a label: {_choices(text, labels)}")


_SHOWN_LABELS = 12
"""At most this many labels are listed in an error (a code table can have hundreds)."""


def _choices(text: str, labels: Sequence[tuple[Any, str]]) -> str:
    shown = ", ".join(f"{value} ({label})" for value, label in labels[:_SHOWN_LABELS])
    if len(labels) > _SHOWN_LABELS:
        shown += f", ... ({len(labels) - _SHOWN_LABELS} more)"
    words = [label for _, label in labels] + [value for value, _ in labels if isinstance(value, str)]
    close = difflib.get_close_matches(text, words, n=1)
    return shown + (f"; did you mean {close[0]!r}?" if close else "")


def _whole_number(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``2026-01-01T12:00[:00][+02:00|Z]``, ``2026-01-01``, a duration ago (``90m``), today, now."""
    now = now or datetime.now(UTC)
    word = text.strip().lower()
    if word == "now":
        return now
    if word in ("today", "yesterday"):
        midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=1 if word == "yesterday" else 0)
    if re.fullmatch(r"(\d+(\.\d+)?(ms|w|d|h|m|s))+", word):
        return now - parse_duration(word)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{text!r} is not a time: write 2026-05-01T12:00, 2026-05-01, 1h (ago), today or now"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def loads_strict(text: str) -> Any:
    """JSON from the command line, refusing what the server would: NaN, numbers beyond a
    double (1e400), lone surrogates. Raises ValueError saying which."""

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise ValueError(f"{number} is not a finite number")
        return value

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    value = json.loads(text, parse_float=finite, parse_constant=constant)
    if not _all_text(value):
        raise ValueError("a string holds a lone surrogate such as \\ud800, which is not text")
    return value


def _all_text(value: Any) -> bool:
    if isinstance(value, str):
        return is_text(value)
    if isinstance(value, dict):
        return all(is_text(k) and _all_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_text(v) for v in value)
    return True


def is_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _datetime(text: str) -> str:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def _describe(kind: str) -> str:
    return {
        "integer": "a whole number",
        "float": "a number",
        "boolean": "a boolean (true/false, yes/no, 1/0)",
        "datetime": "an ISO-8601 time such as 2026-01-01T00:00:00Z",
        "table": "a JSON list of records",
    }.get(kind, f"a {kind}")


def parse_assignments(items: Iterable[str], fields: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``["value=3.5", "ok=true"]`` -> one record typed by ``fields``; unknown keys are left to the server."""
    by_name = {str(f.get("name")): f for f in fields if isinstance(f, Mapping)}
    record: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not is_text(key):
            raise UsageError(f"{key!r} is not text (bytes that are not UTF-8?)")
        if not sep or not key:
            raise UsageError(f"expected key=value, got {item!r}")
        if key in record:
            raise UsageError(f"{key} is given twice")
        record[key] = parse_value(text, by_name.get(key), key)
    return record
