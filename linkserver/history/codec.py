"""How events are written into rows and read back, the same way for every backend.

Data tables are stored as compact JSON. Datetimes inside them become
ISO-8601 UTC text (``2024-05-01T12:00:00+00:00``); nested tables become
arrays. Reading reverses both: arrays become tuples (a data table has no
other kind of list) and text of exactly that datetime shape becomes an
aware UTC datetime again, so ``get(append(e).id) == e``. (A *string* field
whose value is exactly such text comes back as a datetime; filters compare
the two the same way.)

On SQLite, ``created``, ``expires`` and acknowledgement times are stored as
integer microseconds since 1970-01-01 UTC: exact, ordered, and four times
cheaper to make than ISO text on every fire (in the ``sqlite3`` shell:
``datetime(created / 1e6, 'unixepoch', 'subsec')``). PostgreSQL uses
``timestamptz``.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from linkserver.core.events import Acknowledgement, Event
from linkserver.core.formats import DataTable
from linkserver.history.errors import InvalidAcknowledgement, UnstorableEvent

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
_DATETIME_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00\Z")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise TypeError(f"naive datetime {value.isoformat()} (add a timezone)")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} value {value!r}")


_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, allow_nan=False, default=_json_default
)
# The C encoder made once, instead of once per call as JSONEncoder.encode does
# (this runs on every persistent fire); same settings as _encoder.
_c_encoder = (
    json.encoder.c_make_encoder(
        None, _json_default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def encode_data(data: DataTable) -> str:
    """The JSON text stored for a data table. Raises UnstorableEvent (a ValueError)."""
    try:
        if _c_encoder is not None and type(data) is tuple:
            return "".join(_c_encoder(data, 0))
        return _encoder.encode(data)
    except (TypeError, ValueError) as exc:
        raise UnstorableEvent(f"the event's data cannot be stored: {exc}") from None


# json.loads without its three Python layers around the C scanner: stored text is
# compact JSON we wrote, one value with nothing after it.
_scan = json.scanner.make_scanner(json.JSONDecoder())


def decode_data(raw: Any) -> DataTable:
    """A data table from stored JSON (text, or already parsed by the driver)."""
    if isinstance(raw, str):
        # Most stored tables hold no nested table and no datetime: then the records as
        # parsed are the result (a '[' or a '+00:00"' anywhere, even inside a string,
        # takes the full way).
        if raw.find("[", 1) < 0 and '+00:00"' not in raw:
            try:
                records, end = _scan(raw, 0)
            except (StopIteration, ValueError):
                end = -1
            if end == len(raw):
                return tuple(records) if records else ()
        raw = json.loads(raw)  # also: what is not what we wrote fails here, with a clear error
    elif isinstance(raw, bytes):
        raw = json.loads(raw)
    if not raw:
        return ()
    return tuple(_revive(record) for record in raw)


def _revive(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) >= 25 and value[10] == "T" and _DATETIME_TEXT.match(value):
            return datetime.fromisoformat(value)
        return value
    if isinstance(value, dict):
        return {key: _revive(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_revive(item) for item in value)
    return value


def check_time(moment: datetime | None, what: str) -> None:
    if moment is not None and (moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None):
        raise UnstorableEvent(f"{what} {moment.isoformat()} has no timezone; history stores aware datetimes")


def check_event(event: Event) -> None:
    """Raise UnstorableEvent unless ``event`` can be stored as it is."""
    check_time(event.created, "created")
    check_time(event.expires, "expires")


def check_acknowledgement(ack: Acknowledgement) -> None:
    """Raise InvalidAcknowledgement (a ValueError) unless ``ack`` can be stored."""
    if not isinstance(ack, Acknowledgement):
        raise InvalidAcknowledgement(f"expected an Acknowledgement, got {type(ack).__name__}")
    if not isinstance(ack.text, str) or not ack.text.strip():
        raise InvalidAcknowledgement("an acknowledgement needs a text saying what was done; it is empty")
    if not isinstance(ack.user, str) or not ack.user.strip():
        raise InvalidAcknowledgement("an acknowledgement needs the user who gives it; it is empty")
    if not isinstance(ack.time, datetime) or ack.time.tzinfo is None or ack.time.utcoffset() is None:
        raise InvalidAcknowledgement(f"the acknowledgement time {ack.time!r} needs a timezone")


def micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC: how SQLite stores times. UnstorableEvent if naive."""
    try:
        return (moment - EPOCH) // MICROSECOND
    except TypeError:  # naive minus aware
        check_time(moment, "time")
        raise


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(0, 0, value)  # positional: half the cost of microseconds=
