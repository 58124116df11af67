"""What a data table is, and its JSON form: the part of formats an event needs.

Kept apart from :mod:`linkserver.core.formats` (validation, compiled per
format) so that reading events (the client, the CLI) does not load the
validators.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Record = dict[str, Any]
DataTable = tuple[Record, ...]


def to_jsonable(value: Any) -> Any:
    """A data table (or any value in one) with datetimes as ISO-8601 strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def labelled(data: DataTable, labels: list[dict[str, Any]] | None) -> list[Record]:
    """The records of ``data`` with each coded value replaced by its label (``labels`` as
    :attr:`Event.labels <linkserver.core.events.Event.labels>` gives them): what operators read."""
    if not labels:
        return list(data)
    out: list[Record] = []
    for index, record in enumerate(data):
        shown = labels[index] if index < len(labels) else None
        if not shown or not isinstance(record, dict):
            out.append(record)
            continue
        merged = dict(record)
        for name, label in shown.items():
            value = merged.get(name)
            if isinstance(label, list) and isinstance(value, (list, tuple)):
                merged[name] = labelled(tuple(value), label)
            elif isinstance(label, str):
                merged[name] = label
        out.append(merged)
    return out
