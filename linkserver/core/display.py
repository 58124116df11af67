"""How an event is shown besides its values: the labels of its coded values.

A field with value labels (``labels: {1: up, 2: down}``) stores the value; what
operators read is the label. :func:`data_labels` gives, for a data table, the
label of every labelled value, record by record, in the shape of the data
(``[{"status": "down"}]``; a nested table field gives a list of such records).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from linkserver.core.checks import FieldType
from linkserver.core.formats import TableFormat


def has_labels(fmt: TableFormat) -> bool:
    """Whether any field of ``fmt`` (or of a nested table) has value labels."""
    return any(
        field.labels or (field.format is not None and has_labels(field.format)) for field in fmt.fields
    )


def data_labels(fmt: TableFormat, data: Sequence[Any]) -> list[dict[str, Any]] | None:
    """Per record, ``{field: label}`` of its labelled values (nested tables: a list of those);
    None when no value of ``data`` has a label. Values without a label are left out."""
    if not data or not has_labels(fmt):
        return None
    out: list[dict[str, Any]] = []
    found = False
    for record in data:
        shown = _record_labels(fmt, record) if isinstance(record, dict) else {}
        found = found or bool(shown)
        out.append(shown)
    return out if found else None


def _record_labels(fmt: TableFormat, record: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for field in fmt.fields:
        if field.labels:
            label = field.label(record.get(field.name))
            if label is not None:
                shown[field.name] = label
        elif field.type is FieldType.TABLE and field.format is not None:
            rows = record.get(field.name)
            if isinstance(rows, (list, tuple)):
                nested = data_labels(field.format, rows)
                if nested is not None:
                    shown[field.name] = nested
    return shown
