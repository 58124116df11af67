"""Query semantics shared by every backend: validation, cursors, time bounds, Python tests.

The memory store evaluates a whole :class:`HistoryQuery` with
:func:`compile_query`; the SQL store evaluates in Python only what it could not
say in SQL, with the same helpers, so both agree on every edge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from linkserver.core.errors import InvalidName
from linkserver.core.events import EPOCH_MS, NODE_BITS, SEQUENCE_BITS, Event
from linkserver.core.paths import Mask, compile_mask
from linkserver.history.base import HistoryQuery
from linkserver.history.errors import InvalidCursor, InvalidQuery

MAX_LIMIT = 10_000
MAX_ID = (1 << 63) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_PREFIX = "k"

EventTest = Callable[[Event, bool], bool]
"""``(event, requires_acknowledgement) -> matches``."""


def check_query(query: HistoryQuery) -> None:
    """Raise InvalidQuery (a ValueError) for criteria no store can answer."""
    if isinstance(query.limit, bool) or not isinstance(query.limit, int) or not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be an integer from 1 to {MAX_LIMIT}, got {query.limit!r}")
    for moment, what in ((query.since, "since"), (query.until, "until")):
        if moment is not None and (moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None):
            raise InvalidQuery(f"{what} {moment.isoformat()} has no timezone; add one, e.g. UTC")
    if isinstance(query.masks, str):
        raise InvalidQuery(f"masks must be a tuple of masks, not the string {query.masks!r}")
    compile_masks(query.masks)
    if query.cursor is not None:
        decode_cursor(query.cursor)


def compile_masks(masks: tuple[str, ...]) -> tuple[Mask, ...]:
    try:
        return tuple(compile_mask(text) for text in masks)
    except InvalidName as exc:
        raise InvalidQuery(str(exc)) from None


def encode_cursor(event_id: int) -> str:
    """The cursor after (in query order) the event ``event_id``."""
    return f"{_CURSOR_PREFIX}{event_id}"


def decode_cursor(cursor: str) -> int:
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX) or not cursor[1:].isdigit():
        raise InvalidCursor(cursor)
    value = int(cursor[1:])
    if value > MAX_ID:
        raise InvalidCursor(cursor)
    return value


def time_id(moment: datetime) -> int:
    """The smallest event id whose encoded creation time is at or after ``moment``.

    Ids carry milliseconds, so ``id_time(id) >= moment`` exactly when
    ``id >= time_id(moment)`` (the millisecond is rounded up).
    """
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    ms = -(-micros // 1000) - EPOCH_MS
    if ms <= 0:
        return 0
    return min(ms << (NODE_BITS + SEQUENCE_BITS), MAX_ID)


def id_bounds(query: HistoryQuery) -> tuple[int | None, int | None]:
    """``(lowest id, highest id + 1)`` selected by since/until and the cursor; None: unbounded."""
    low = time_id(query.since) if query.since is not None else None
    high = time_id(query.until) if query.until is not None else None
    if query.cursor is not None:
        after = decode_cursor(query.cursor)
        if query.newest_first:
            high = after if high is None else min(high, after)
        else:
            low = after + 1 if low is None else max(low, after + 1)
    return low, high


def masks_test(masks: tuple[Mask, ...]) -> Callable[[str], bool]:
    if len(masks) == 1:
        return masks[0].matches
    return lambda context: any(mask.matches(context) for mask in masks)


def compile_query(query: HistoryQuery, *, with_bounds: bool = True) -> EventTest:
    """A Python test equivalent to every criterion of ``query`` (cursor and since/until too)."""
    check_query(query)
    tests: list[EventTest] = []
    masks = compile_masks(query.masks)
    if not any(mask.segments == ("**",) for mask in masks):
        in_masks = masks_test(masks)
        tests.append(lambda e, r: in_masks(e.context))
    if query.names:
        names = frozenset(query.names)
        tests.append(lambda e, r: e.name in names)
    if query.min_level is not None:
        low_level = int(query.min_level)
        tests.append(lambda e, r: e.level >= low_level)
    if query.max_level is not None:
        high_level = int(query.max_level)
        tests.append(lambda e, r: e.level <= high_level)
    if with_bounds:
        low, high = id_bounds(query)
        if low is not None:
            tests.append(lambda e, r: e.id >= low)
        if high is not None:
            tests.append(lambda e, r: e.id < high)
    if query.group is not None:
        group = query.group
        tests.append(lambda e, r: e.group == group)
    if query.author is not None:
        author = query.author
        tests.append(lambda e, r: e.author == author)
    if query.acknowledged is not None:
        wanted = query.acknowledged
        tests.append(lambda e, r: bool(e.acknowledgements) is wanted)
    if query.requires_acknowledgement is not None:
        required = query.requires_acknowledgement
        tests.append(lambda e, r: r is required)
    if query.filter is not None:
        matches = query.filter.matches
        tests.append(lambda e, r: matches(e))
    if query.visible is not None:
        visible = query.visible
        tests.append(lambda e, r: bool(visible(e.context, e.name)))

    def test(event: Event, requires_ack: bool) -> bool:
        for item in tests:  # noqa: SIM110 - cheaper than all() over a generator
            if not item(event, requires_ack):
                return False
        return True

    return test
