"""The alarm list written by SQLite's triggers (history/alarm_triggers.py) is the one the Python
fold writes: the same keys for the same values, the same rows after the same events, and a
batch the triggers cannot take is folded in Python with the triggers off."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from history_helpers import EventMaker

from linkserver.core.alarm_fold import Clear, Raise
from linkserver.core.alarms import AlarmLevel, AlarmState, parse_key
from linkserver.core.events import Event
from linkserver.core.formats import Field, TableFormat
from linkserver.core.levels import Level
from linkserver.history.alarm_triggers import (
    AlarmTriggers,
    clear_trigger,
    drop_trigger,
    key_sql,
    raise_trigger,
)
from linkserver.history.alarms import AlarmQuery, AlarmStore, AlarmWrites, open_alarm_store
from linkserver.history.codec import encode_data
from linkserver.history.sql import SqlHistoryStore

FORMAT = TableFormat(
    fields=(
        Field(name="port", type="integer", nullable=True),
        Field(name="site", type="string", nullable=True),
        Field(name="ratio", type="float", nullable=True),
        Field(name="up", type="boolean", nullable=True),
        Field(name="when", type="datetime", nullable=True),
    )
)


def sql_key(template: str, context: str, name: str, data: tuple[dict[str, Any], ...]) -> str:
    expression = key_sql(parse_key(template), FORMAT)
    assert expression is not None, template
    (found,) = (
        sqlite3.connect(":memory:")
        .execute(
            f"SELECT {expression} FROM (SELECT ? AS context, ? AS name, ? AS data) AS NEW",
            (context, name, encode_data(data)),
        )
        .fetchone()
    )
    return str(found)


@pytest.mark.parametrize(
    "template",
    [
        "{context}:{name}:{data.port}",
        "power:{data.site}",
        "it's {data.site|nowhere} at {data.ratio} ({data.up}) {{x}}",
        "{context}",
    ],
)
@pytest.mark.parametrize(
    ("context", "data"),
    [
        ("sw.a", ({"port": 3, "site": "Zürich \"north\" 'x'", "ratio": 0.1, "up": True},)),
        ("", ({"port": -12345678901234567890123, "site": "", "ratio": 1e20, "up": False},)),
        ("sw.b", ({"port": None, "site": None, "ratio": 1.5e-7},)),
        ("sw.c", ({},)),
        ("sw.d", ()),
        ("sw.e", ({"port": 0, "site": "a\nb\\c\u2603", "ratio": -0.0}, {"port": 9})),
    ],
)
def test_sql_renders_a_key_as_python_does(
    template: str, context: str, data: tuple[dict[str, Any], ...]
) -> None:
    event = EventMaker()(context, "linkDown", data=data)
    assert sql_key(template, context, "linkDown", data) == parse_key(template).render(event)


def test_keys_sql_cannot_render_exactly_have_no_trigger() -> None:
    for template in ("{level}:{data.port}", "{data.port:05d}", "{created}", "{data.when}", "{data.nope}"):
        assert key_sql(parse_key(template), FORMAT) is None, template
    assert key_sql(parse_key("{name}:{data.site}"), FORMAT, "linkDown") == (
        "'linkDown' || ':' || coalesce(NEW.data ->> '$[0].\"site\"', '<data.site?>')"
    )


KEY = parse_key("{context}:{name}:{data.port}")
DOWN = Raise(KEY, AlarmLevel.HIGHEST, None)
FLAP = Raise(KEY, AlarmLevel.LAST, timedelta(minutes=5))
UP = Clear((("down", KEY), ("flap", KEY)))
ACTIONS = {"down": DOWN, "flap": FLAP, "up": UP}


def resolve(event: Event) -> Raise | Clear | None:
    return None if event.context == "gone" else ACTIONS.get(event.name)


def triggers(taken: list[bool]) -> AlarmTriggers:
    def take(events: Any) -> list[Event] | None:
        ok = all(event.context != "gone" for event in events)
        taken.append(ok)
        return [] if ok else None

    down, flap = (key_sql(KEY, FORMAT), key_sql(KEY, FORMAT))
    up = [key_sql(KEY, FORMAT, "down"), key_sql(KEY, FORMAT, "flap")]
    assert down is not None and flap is not None and None not in up
    off = tuple(drop_trigger(name) for name in ACTIONS)
    made = (
        raise_trigger("down", down, AlarmLevel.HIGHEST, None),
        raise_trigger("flap", flap, AlarmLevel.LAST, timedelta(minutes=5)),
        clear_trigger("up", up),  # type: ignore[arg-type]
    )
    return AlarmTriggers(on=(*off, *made), off=off, take=take)


def sqlite_side(
    path: Path, with_triggers: list[bool] | None
) -> tuple[SqlHistoryStore, AlarmStore, AlarmWrites]:
    store = SqlHistoryStore(f"sqlite:///{path}")
    store.start()
    alarms = open_alarm_store(store)
    writes = AlarmWrites(alarms, resolve)
    if with_triggers is not None:
        writes.use_triggers(triggers(with_triggers))
    store.add_same_commit(writes)
    return store, alarms, writes


def rows(alarms: AlarmStore) -> list[tuple[Any, ...]]:
    found = alarms.query(AlarmQuery(limit=1000, newest_first=False)).alarms
    return [
        (
            a.id,
            a.key,
            a.context,
            a.name,
            a.state,
            a.level,
            a.count,
            a.first,
            a.last,
            a.event_id,
            a.policy,
            a.auto_clear_at,
            a.cleared,
            a.cleared_by,
            a.cleared_event,
        )
        for a in found
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_triggers_write_the_rows_the_fold_writes(tmp_path: Path, seed: int) -> None:
    taken: list[bool] = []
    python, python_alarms, _ = sqlite_side(tmp_path / "python.sqlite3", None)
    sql, sql_alarms, writes = sqlite_side(tmp_path / "sql.sqlite3", taken)
    make = EventMaker()
    pick = random.Random(seed)
    try:
        for _ in range(12):  # batches: raises, reductions, clears, raises again after a clear
            batch = [
                make(
                    pick.choice(["sw.a", "sw.b", "", "gone" if pick.random() < 0.05 else "sw.a"]),
                    pick.choice(["down", "down", "flap", "up", "other"]),
                    pick.choice(list(Level)),
                    data=({"port": pick.randint(1, 3)},) if pick.random() < 0.95 else (),
                )
                for _ in range(pick.randint(1, 40))
            ]
            for store in (python, sql):
                for event in batch:
                    store.append(event)
                store.flush(10)
            assert rows(sql_alarms) == rows(python_alarms)
        assert True in taken and rows(sql_alarms)
        assert {alarm[4] for alarm in rows(sql_alarms)} >= {AlarmState.OPEN, AlarmState.CLEARED}
    finally:
        python.stop()
        sql.stop()


def test_a_batch_the_triggers_cannot_take_is_folded_with_them_off(tmp_path: Path) -> None:
    taken: list[bool] = []
    store, alarms, writes = sqlite_side(tmp_path / "sql.sqlite3", taken)
    make = EventMaker()
    try:
        store.append(make("sw.a", "down", data=({"port": 1},)))
        store.flush(10)
        assert writes.connection_setup is writes.triggers.on  # type: ignore[union-attr]
        store.append(make("gone", "down", data=({"port": 1},)))  # its context was removed meanwhile
        store.append(make("sw.a", "down", Level.ERROR, data=({"port": 1},)))
        store.flush(10)
        assert writes.connection_setup is writes.triggers.off  # type: ignore[union-attr]
        assert [(a.key, a.count, a.level) for a in alarms.query(AlarmQuery()).alarms] == [
            ("sw.a:down:1", 2, Level.ERROR)
        ]
        store.append(make("sw.a", "up", data=({"port": 1},)))
        store.flush(10)
        assert taken == [True, False, True]
        assert [a.state for a in alarms.query(AlarmQuery()).alarms] == [AlarmState.CLEARED]
    finally:
        store.stop()
