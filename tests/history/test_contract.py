"""The HistoryStore contract, run against every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from history_helpers import EventMaker, store_all
from sqlalchemy import create_engine, text

from linkserver.core.errors import EventNotFound, HistoryError, ServerStopped
from linkserver.core.events import Acknowledgement, Event, id_time
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level
from linkserver.core.paths import compile_mask
from linkserver.history.base import HistoryQuery, HistoryStore
from linkserver.history.errors import InvalidAcknowledgement, InvalidCursor, InvalidQuery, UnstorableEvent
from linkserver.history.export import export_csv, export_jsonl
from linkserver.history.sql import SqlHistoryStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONTEXTS = [
    "", "devices", "devices.plc7", "devices.plc_8", "devices.plcX8", "devices.plc_8.io",
    "devices.plcX8.io", "devices.plc_8.io.x", "devices_x", "Devices.plc7", "users.bob", "users.bob.devices",
    "users.bob.devices.x", "users.ann.devices.y.z", "alerts.fire",
]  # fmt: skip
NAMES = ["alarm", "login", "logout", "log_in"]
DATA = [
    {"x": 1, "s": "abc", "t": NOW, "ok": True},
    {"x": 5, "s": "m", "ok": False, "rows": ({"a": 1}, {"a": 2})},
    {"x": 2.5, "s": "2024-05-01T12:00:00Z"},
    {"x": "5", "s": None},
    {"x": True, "s": "Zebra", "t": NOW + timedelta(hours=1)},
    {"x": -3, "s": 'it\'s "quoted" ünïcode'},
    {"s": "abd", "rows": ({"a": 7},)},
    {"x": 10**12, "s": "a%b_c"},
    {"x": 2**60 + 1, "s": "b"},
    {"x": 0.1, "s": ""},
]


def a_dataset(make_event: EventMaker) -> list[Event]:
    events = []
    for i in range(150):
        events.append(
            make_event(
                CONTEXTS[i % len(CONTEXTS)],
                NAMES[(i // 3) % len(NAMES)],
                Level(i % 6),
                data=(DATA[i % len(DATA)], {"x": 99}) if i % 11 == 0 else (DATA[i % len(DATA)],),
                author=[None, "alice", "bob"][i % 3],
                group=[None, "alarms", "ops", "Alarms"][(i // 2) % 4],
                step_ms=1 + i % 3,
            )
        )
    return events


@pytest.fixture
def dataset(store: HistoryStore, make_event: EventMaker) -> list[Event]:
    """150 varied events, every 4th requiring acknowledgement, every 5th acknowledged."""
    events = a_dataset(make_event)
    for i, event in enumerate(events):
        store.append(event, requires_acknowledgement=i % 4 == 0)
    store.flush()
    for i, event in enumerate(events):
        if i % 5 == 0:
            events[i] = store.acknowledge(event.id, Acknowledgement(time=NOW, user="op", text=f"seen {i}"))
    return events


def requires_ack(event: Event, dataset: list[Event]) -> bool:
    return dataset.index(event) % 4 == 0


def all_pages(store: HistoryStore, query: HistoryQuery) -> list[list[Event]]:
    pages = []
    while True:
        page = store.query(query)
        pages.append(list(page.events))
        if page.next_cursor is None:
            return pages
        assert len(page.events) == query.limit, "a page before the last one must be full"
        query = attrs.evolve(query, cursor=page.next_cursor)


def ids(events: list[Event]) -> list[int]:
    return [event.id for event in events]


def newest_first(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda event: event.id, reverse=True)


# -- append and get ------------------------------------------------------------


def test_append_then_get_returns_an_equal_event(store: HistoryStore, make_event: EventMaker) -> None:
    event = make_event(
        "devices.plc7",
        data=(
            {
                "when": datetime(2024, 5, 1, 14, 30, 1, 250000, tzinfo=UTC),
                "midnight": datetime(2024, 1, 1, tzinfo=UTC),
                "rows": ({"a": 1, "at": NOW}, {"a": 2, "at": None}),
                "empty": (),
                "text": 'ünïcode "quotes" and \\ backslash',
                "looks_like_a_time": "2024-05-01T12:00:00Z",
                "f": 1.5,
                "big": 2**62,
                "ok": False,
                "none": None,
            },
            {"when": NOW, "rows": ()},
        ),
        author=None,
        group="alarms",
    )
    assert store.append(event).result(timeout=10) == event
    stored = store.get(event.id)
    assert stored == event
    assert stored.data[0]["rows"] == ({"a": 1, "at": NOW}, {"a": 2, "at": None})
    assert stored.data[0]["when"].tzinfo is not None
    assert stored.acknowledgements == ()


def test_event_without_expiry_or_data_round_trips(store: HistoryStore, make_event: EventMaker) -> None:
    event = make_event("", "x", Level.NONE, data=(), author=None, lifetime=None)
    store.append(event).result(timeout=10)
    assert store.get(event.id) == event


def test_get_of_an_unknown_id_raises_event_not_found(store: HistoryStore) -> None:
    with pytest.raises(EventNotFound) as info:
        store.get(12345)
    assert "12345" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_append_refuses_what_it_cannot_store_at_once(store: HistoryStore, make_event: EventMaker) -> None:
    naive = make_event().evolve(created=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(UnstorableEvent, match="timezone"):
        store.append(naive)
    with pytest.raises(UnstorableEvent, match="cannot be stored"):
        store.append(make_event(data=({"x": float("inf")},)))
    with pytest.raises(UnstorableEvent):
        store.append(make_event(data=({"x": {1, 2}},)))
    assert store.count(HistoryQuery()) == 0


def test_a_duplicate_id_fails_its_future_and_keeps_the_first(
    store: HistoryStore, make_event: EventMaker
) -> None:
    first = make_event()
    store.append(first).result(timeout=10)
    twin = first.evolve(name="other")
    others = [make_event() for _ in range(3)]
    futures = [store.append(twin), *(store.append(event) for event in others)]
    with pytest.raises(HistoryError, match=str(first.id)):
        futures[0].result(timeout=10)
    assert [f.result(timeout=10) for f in futures[1:]] == others
    assert store.get(first.id) == first
    assert store.count(HistoryQuery()) == 4


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_completed_future_means_the_row_is_committed(
    backend: str, database_url: Any, make_event: EventMaker
) -> None:
    url = database_url(backend)
    store = SqlHistoryStore(url, flush_interval=timedelta(milliseconds=20))
    store.start()
    try:
        events = [make_event() for _ in range(50)]
        futures = [store.append(event) for event in events]
        outside = create_engine(url)  # another connection, as another process would see it
        try:
            for event, future in zip(events, futures, strict=True):
                future.result(timeout=10)
                with outside.connect() as conn:
                    found = conn.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": event.id})
                    assert found.scalar_one() == 1
        finally:
            outside.dispose()
    finally:
        store.stop()


def test_append_and_store_after_stop_raise_server_stopped(
    backend: str, make_store: Any, make_event: EventMaker
) -> None:
    store = make_store(backend)
    store.stop()
    with pytest.raises(ServerStopped):
        store.append(make_event())
    with pytest.raises(ServerStopped):
        store.store(make_event(), checked=True)


# -- queries -------------------------------------------------------------------

CRITERIA: list[tuple[dict[str, Any], Callable[[Event, bool], bool]]] = [
    ({}, lambda e, r: True),
    ({"masks": ("devices.plc7",)}, lambda e, r: e.context == "devices.plc7"),
    ({"masks": ("root",)}, lambda e, r: e.context == ""),
    ({"masks": ("devices.*",)}, lambda e, r: compile_mask("devices.*").matches(e.context)),
    ({"masks": ("devices.**",)}, lambda e, r: e.context == "devices" or e.context.startswith("devices.")),
    ({"masks": ("devices.plc_8.*",)}, lambda e, r: e.context == "devices.plc_8.io"),
    ({"masks": ("devices.plc_8.**",)}, lambda e, r: e.context.startswith("devices.plc_8")),
    ({"masks": ("*",)}, lambda e, r: e.context != "" and "." not in e.context),
    ({"masks": ("**",)}, lambda e, r: True),
    ({"masks": ("users.*.devices.**",)}, lambda e, r: compile_mask("users.*.devices.**").matches(e.context)),
    ({"masks": ("*.bob",)}, lambda e, r: e.context == "users.bob"),
    ({"masks": ("**.x",)}, lambda e, r: e.context.endswith(".x")),
    ({"masks": ("devices.plc7", "users.**")},
     lambda e, r: e.context == "devices.plc7" or e.context.startswith("users")),
    ({"masks": ()}, lambda e, r: False),
    ({"names": ("login", "log_in")}, lambda e, r: e.name in ("login", "log_in")),
    ({"min_level": Level.WARNING}, lambda e, r: e.level >= Level.WARNING),
    ({"max_level": Level.INFO}, lambda e, r: e.level <= Level.INFO),
    ({"min_level": Level.INFO, "max_level": Level.ERROR}, lambda e, r: Level.INFO <= e.level <= Level.ERROR),
    ({"group": "alarms"}, lambda e, r: e.group == "alarms"),
    ({"author": "bob"}, lambda e, r: e.author == "bob"),
    ({"acknowledged": True}, lambda e, r: e.acknowledged),
    ({"acknowledged": False}, lambda e, r: not e.acknowledged),
    ({"requires_acknowledgement": True}, lambda e, r: r),
    ({"requires_acknowledgement": False}, lambda e, r: not r),
    ({"requires_acknowledgement": True, "acknowledged": False}, lambda e, r: r and not e.acknowledged),
    ({"visible": lambda context, name: context.startswith("users") and name != "login"},
     lambda e, r: e.context.startswith("users") and e.name != "login"),
    ({"masks": ("devices.**",), "names": ("alarm",), "min_level": Level.NOTICE, "author": "alice",
      "visible": lambda context, name: context != "devices.plc7"},
     lambda e, r: e.context.startswith("devices") and e.name == "alarm" and e.level >= 1
     and e.author == "alice" and e.context != "devices.plc7"),
]  # fmt: skip


def test_every_criterion_selects_exactly_its_events(store: HistoryStore, dataset: list[Event]) -> None:
    flags = {event.id: requires_ack(event, dataset) for event in dataset}
    for criteria, expected in CRITERIA:
        query = HistoryQuery(limit=1000, **criteria)
        wanted = newest_first([e for e in dataset if expected(e, flags[e.id])])
        page = store.query(query)
        assert ids(list(page.events)) == ids(wanted), criteria
        assert page.next_cursor is None
        assert store.count(query) == len(wanted), criteria


def test_time_range_selects_by_the_time_in_the_id(store: HistoryStore, dataset: list[Event]) -> None:
    times = sorted(id_time(event.id) for event in dataset)
    since, until = times[20], times[100]
    query = HistoryQuery(since=since, until=until, limit=1000)
    wanted = [e for e in dataset if since <= id_time(e.id) < until]
    assert ids(list(store.query(query).events)) == ids(newest_first(wanted))
    assert store.count(query) == len(wanted) == 80
    between = since + timedelta(microseconds=500)  # inside a millisecond: rounds up
    assert store.count(HistoryQuery(since=between)) == len([e for e in dataset if id_time(e.id) >= between])
    assert store.count(HistoryQuery(until=datetime(2000, 1, 1, tzinfo=UTC))) == 0


def test_results_come_newest_first_with_acknowledgements(store: HistoryStore, dataset: list[Event]) -> None:
    page = store.query(HistoryQuery(limit=10))
    assert list(page.events) == newest_first(dataset)[:10]
    oldest = store.query(HistoryQuery(limit=10, newest_first=False))
    assert list(oldest.events) == dataset[:10]
    assert oldest.events[0].acknowledgements == (Acknowledgement(time=NOW, user="op", text="seen 0"),)


FILTERS = [
    'level >= WARNING and name == "login"',
    "level in [NONE, FATAL]", "level not in [INFO]", "not level < ERROR", "level != 2",
    'context == "root"', 'context == "devices.plc7"', 'context != "devices"', 'context < "devices.plc7"',
    'context in ["devices", "root", "nothing"]', 'context not in ["devices"]',
    'context ~ "devices.*"', 'context ~ "devices.**"', 'not context ~ "devices.**"', 'context ~ "*.bob"',
    'context ~ "users.*.devices.**"', 'context =~ "^devices\\.plc"',
    'name ~ "log*"', 'name ~ "log_*"', 'name ~ "[al]*"', 'name =~ "in$"', 'name >= "login"',
    'group == null', 'group != null', 'group == "alarms"', 'group != "alarms"', 'group < "b"',
    'group in ["alarms", null]', 'group not in ["alarms", null]', 'not group in ["ops"]', 'group ~ "*arms"',
    'not group ~ "a*"', 'author == "bob" or group == "ops"', 'not (author == "bob" or group == "ops")',
    'author ~ "?ob"', 'author >= "b"',
    'id > 0', f'id >= {2**61}.5', 'id == 3.5', 'id in [1, 2.0]', 'id != 7',
    'created >= "2024-05-01T12:00:00.150Z"', 'created < "2024-05-01T12:00:00.100Z"',
    'created in ["2024-05-01T12:00:00.003Z", "2024-05-01T14:00:00.006+02:00"]',
    "data.x == 5", "data.x > 2", "data.x <= 2.5", "data.x == 1", "data.x == true", "data.x != 5",
    'data.x == "5"', 'data.x in [1, 5, "5"]', "data.x not in [5]", "data.x == null", "data.x != null",
    'data.s == "abc"', 'data.s > "abc"', 'data.s < "b"', 'data.s ~ "ab?"', 'data.s =~ "^a"',
    'data.s == "2024-05-01T12:00:00Z"', 'data.s == "a%b_c"', 'data.s ~ "a%*"',
    'data.t == "2024-05-01T12:00:00Z"', 'data.t > "2024-05-01T12:30:00+00:00"', "data.t != null",
    "data.rows.a == 7", "data.rows.a > 1", "data.missing == null", "data.ok == false",
    "not data.x > 2", 'data.x > 2 or name == "alarm"', 'not (data.x > 2 and level >= 3)',
    f"data.x == {10**12}",
    'data.x != 2.5', 'not data.x == 5', 'data.x in [1, 2.5]', 'data.x not in [1, 2.5, "5"]', 'data.x >= -3',
    'data.x == 0.1', 'data.x < 0.2', f'data.x > {2**53}', f'data.x < {2**61}', f'data.x != {2**60 + 1}',
    'data.s != "abc"', 'not data.s == "m"', 'data.s not in ["abc", "m"]', 'data.s in ["b", ""]',
    'data.ok != true', 'not (data.x > 2 or data.s == "m")',
]  # fmt: skip


def test_filters_select_what_filter_matches_says(store: HistoryStore, dataset: list[Event]) -> None:
    for expression in FILTERS:
        flt = parse_filter(expression)
        wanted = newest_first([e for e in dataset if flt.matches(e)])
        query = HistoryQuery(filter=flt, limit=1000)
        assert ids(list(store.query(query).events)) == ids(wanted), expression
        assert store.count(query) == len(wanted), expression


PAGED_QUERIES = [
    {},
    {"masks": ("devices.**",), "min_level": Level.INFO},
    {"filter": parse_filter('data.x > 2 or data.s =~ "^a"')},  # needs Python after SQL
    {"filter": parse_filter('name =~ "^log"')},  # nothing in SQL at all
    {"visible": lambda context, name: hash((context, name)) % 3 != 0},
    {"masks": ("users.*.devices.**", "**.io"), "visible": lambda context, name: name != "alarm"},
    {"visible": lambda context, name: context == "alerts.fire" and name == "login"},  # rare matches
]


@pytest.mark.parametrize("criteria", PAGED_QUERIES)
@pytest.mark.parametrize("order", ["newest_first", "oldest_first"])
def test_pages_join_into_the_full_result_without_duplicates_or_gaps(
    store: HistoryStore, dataset: list[Event], criteria: dict[str, Any], order: str
) -> None:
    whole = store.query(HistoryQuery(limit=1000, newest_first=order == "newest_first", **criteria))
    assert whole.next_cursor is None
    for limit in (1, 7, 50):
        query = HistoryQuery(limit=limit, newest_first=order == "newest_first", **criteria)
        pages = all_pages(store, query)
        joined = [event for page in pages for event in page]
        assert joined == list(whole.events)
        assert len({event.id for event in joined}) == len(joined)
        steps = [b.id - a.id for a, b in zip(joined, joined[1:], strict=False)]
        assert all(step < 0 for step in steps) if order == "newest_first" else all(step > 0 for step in steps)


def test_a_cursor_continues_after_the_last_event_returned(
    store: HistoryStore, dataset: list[Event], make_event: EventMaker
) -> None:
    order = ids(newest_first(dataset))
    first = store.query(HistoryQuery(limit=5))
    assert ids(list(first.events)) == order[:5]
    # Newer events arriving between pages do not shift the next page (unlike OFFSET).
    store_all(store, [make_event() for _ in range(3)])
    second = store.query(HistoryQuery(limit=5, cursor=first.next_cursor))
    assert ids(list(second.events)) == order[5:10]
    # The same cursor read the other way walks back towards the newer events.
    back = store.query(HistoryQuery(limit=5, cursor=second.next_cursor, newest_first=False))
    assert ids(list(back.events)) == order[4:9][::-1]


def test_bad_queries_raise_value_errors(store: HistoryStore) -> None:
    for bad in ({"limit": 0}, {"limit": 10_001}, {"masks": ("devices.*x",)}, {"masks": "devices"},
                {"since": datetime(2024, 1, 1)}):  # fmt: skip
        with pytest.raises(InvalidQuery):
            store.query(HistoryQuery(**bad))
    for cursor in ("garbage", "k-1", "k", "k99999999999999999999999"):
        with pytest.raises(InvalidCursor):
            store.query(HistoryQuery(cursor=cursor))


# -- acknowledgements ------------------------------------------------------------


def test_acknowledgements_accumulate_in_time_order(store: HistoryStore, make_event: EventMaker) -> None:
    event = make_event()
    store.append(event, requires_acknowledgement=True).result(timeout=10)
    acks = [
        Acknowledgement(time=NOW + timedelta(minutes=2), user="bob", text="fixed"),
        Acknowledgement(time=NOW, user="alice", text="looking"),
        Acknowledgement(time=NOW + timedelta(minutes=1), user="alice", text="found it"),
    ]
    for ack in acks:
        returned = store.acknowledge(event.id, ack)
    expected = tuple(sorted(acks, key=lambda ack: ack.time))
    assert returned.acknowledgements == expected
    assert store.get(event.id).acknowledgements == expected
    assert store.get(event.id) == event.evolve(acknowledgements=expected)
    assert store.count(HistoryQuery(requires_acknowledgement=True, acknowledged=False)) == 0


def test_acknowledging_an_unknown_event_writes_nothing(store: HistoryStore, make_event: EventMaker) -> None:
    event = make_event()
    store.append(event).result(timeout=10)
    with pytest.raises(EventNotFound):
        store.acknowledge(event.id + 1, Acknowledgement(time=NOW, user="bob", text="ok"))
    assert store.count(HistoryQuery(acknowledged=True)) == 0


@pytest.mark.parametrize(
    "ack",
    [
        Acknowledgement(time=NOW, user="bob", text=""),
        Acknowledgement(time=NOW, user="bob", text="   "),
        Acknowledgement(time=NOW, user="", text="ok"),
        Acknowledgement(time=datetime(2024, 5, 1), user="bob", text="ok"),
    ],
)
def test_an_empty_or_bad_acknowledgement_is_refused(
    store: HistoryStore, make_event: EventMaker, ack: Acknowledgement
) -> None:
    event = make_event()
    store.append(event).result(timeout=10)
    with pytest.raises(InvalidAcknowledgement) as info:
        store.acknowledge(event.id, ack)
    assert isinstance(info.value, ValueError)
    assert store.get(event.id).acknowledgements == ()


def test_an_event_still_queued_can_be_acknowledged(store: HistoryStore, make_event: EventMaker) -> None:
    event = make_event()
    store.append(event)  # not waited for
    acked = store.acknowledge(event.id, Acknowledgement(time=NOW, user="op", text="seen"))
    assert acked.acknowledged


# -- delete and purge --------------------------------------------------------------


def test_delete_removes_the_event_and_its_acknowledgements(
    store: HistoryStore, make_event: EventMaker
) -> None:
    keep, gone = make_event(), make_event()
    store_all(store, [keep, gone])
    store.acknowledge(gone.id, Acknowledgement(time=NOW, user="op", text="seen"))
    store.delete(gone.id)
    with pytest.raises(EventNotFound):
        store.get(gone.id)
    with pytest.raises(EventNotFound):
        store.delete(gone.id)
    assert ids(list(store.query(HistoryQuery()).events)) == [keep.id]
    assert store.count(HistoryQuery(acknowledged=True)) == 0
    _assert_no_orphan_acknowledgements(store)


def test_purge_deletes_expired_events_and_their_acks_in_batches(
    store: HistoryStore, make_event: EventMaker
) -> None:
    short = [make_event(lifetime=timedelta(hours=1)) for _ in range(23)]
    long = [make_event(lifetime=timedelta(days=30)) for _ in range(5)]
    forever = [make_event(lifetime=None) for _ in range(2)]
    store_all(store, short + long + forever)
    for event in short[:4] + long[:1]:
        store.acknowledge(event.id, Acknowledgement(time=NOW, user="op", text="seen"))
    assert store.purge_expired(NOW, batch_size=5) == 0
    assert store.purge_expired(NOW + timedelta(days=1), batch_size=5) == 23
    assert store.purge_expired(NOW + timedelta(days=1), batch_size=5) == 0
    remaining = store.query(HistoryQuery(limit=100, newest_first=False)).events
    assert ids(list(remaining)) == ids(long + forever)
    assert store.count(HistoryQuery(acknowledged=True)) == 1
    _assert_no_orphan_acknowledgements(store)
    assert store.purge_expired(NOW + timedelta(days=60), batch_size=1) == 5
    assert store.count(HistoryQuery()) == 2
    with pytest.raises(ValueError):
        store.purge_expired(NOW, batch_size=0)


def _assert_no_orphan_acknowledgements(store: HistoryStore) -> None:
    if isinstance(store, SqlHistoryStore):
        with store.engine.connect() as conn:
            orphans = conn.execute(
                text(
                    "SELECT count(*) FROM acknowledgements a WHERE NOT EXISTS "
                    "(SELECT 1 FROM events e WHERE e.id = a.event_id)"
                )
            ).scalar_one()
        assert orphans == 0


# -- export ------------------------------------------------------------------------


def test_export_jsonl_writes_every_matching_event_once(store: HistoryStore, dataset: list[Event]) -> None:
    out = io.StringIO()
    query = HistoryQuery(masks=("devices.**",), limit=7, visible=lambda c, n: n != "logout")
    written = export_jsonl(store, query, out)
    lines = out.getvalue().splitlines()
    in_devices = compile_mask("devices.**").matches
    expected = newest_first([e for e in dataset if in_devices(e.context) and e.name != "logout"])
    assert written == len(lines) == len(expected)
    assert [json.loads(line) for line in lines] == [json.loads(json.dumps(e.marshal())) for e in expected]
    assert [Event.unmarshal(json.loads(line)).id for line in lines] == ids(expected)


def test_export_csv_has_a_header_and_one_row_per_event(store: HistoryStore, dataset: list[Event]) -> None:
    out = io.StringIO(newline="")
    written = export_csv(store, HistoryQuery(newest_first=False, limit=3), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written == len(rows) == len(dataset)
    first = rows[0]
    assert int(first["id"]) == dataset[0].id
    assert first["level"] == dataset[0].level.name
    assert json.loads(first["data"])[0]["t"] == NOW.isoformat()
    acks = [{"time": NOW.isoformat(), "user": "op", "text": "seen 0"}]
    assert json.loads(first["acknowledgements"]) == acks
    assert first["group"] == "" and first["context"] == ""
