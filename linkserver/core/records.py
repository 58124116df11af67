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
