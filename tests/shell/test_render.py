"""Rendering: pure functions from values to text (plain, or with ANSI colours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from linkserver.core.events import Acknowledgement, Event
from linkserver.core.levels import Level
from linkserver.shell import render

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def event(
    level: Level = Level.ERROR, data: tuple = ({"code": "E42", "message": "pump stalled"},), **kw
) -> Event:
    values = dict(
        id=912000000000000001,
        context="devices.plc7",
        name="error",
        level=level,
        created=T0,
        expires=T0 + timedelta(days=90),
        author="admin",
        group="state",
        data=data,
    )
    values.update(kw)
    return Event(**values)


def test_table_aligns_columns_and_cuts_only_the_last_one_to_the_width():
    text = render.table(["A", "BB", "DATA"], [["x", "yyyy", "z" * 50], ["long-x", "y", "short"]], width=30)
    lines = text.splitlines()
    assert lines[0].startswith("A       BB    DATA")
    assert lines[1].startswith("x       yyyy  ") and lines[1].endswith("…")
    assert max(len(line) for line in lines) <= 30
    assert lines[2] == "long-x  y     short"


def test_colour_codes_do_not_change_the_alignment():
    rows = [["1", render.level_cell("ERROR"), "a"], ["22", render.level_cell(Level.NOTICE), "b"]]
    coloured = render.table(["ID", "LEVEL", "X"], rows, colour=True)
    assert render.LEVEL_STYLES[Level.ERROR] in coloured and render.LEVEL_STYLES[Level.NOTICE] in coloured
    assert render.plain(coloured) == render.table(["ID", "LEVEL", "X"], rows, colour=False)


def test_empty_table_says_none():
    assert render.table(["A"], []) == "(none)"


def test_data_summary_shows_the_first_record_and_counts_the_others():
    data = ({"quantity": "t", "value": 21.5, "unit": ""}, {"quantity": "p"}, {"quantity": "s"})
    assert render.data_summary(data) == 'quantity=t, value=21.5, unit="" (+2 records)'
    assert render.data_summary(data, limit=12) == "quantity=t,…"
    assert render.data_summary(()) == ""


def test_value_text_is_readable():
    assert render.value_text(None) == "null"
    assert render.value_text(True) == "true"
    assert render.value_text([{"a": 1}]) == '[{"a": 1}]'


def test_event_line_is_coloured_by_level():
    line = render.event_line(event(Level.FATAL), colour=True)
    assert line.startswith(render.LEVEL_STYLES[Level.FATAL]) and line.endswith(render.RESET)
    plain = render.plain(line)
    assert "FATAL" in plain and "devices.plc7/error #912000000000000001" in plain and "code=E42" in plain
    assert render.event_line(event(), colour=False) == plain.replace("FATAL", "ERROR")


def test_history_table_marks_events_waiting_for_an_acknowledgement():
    acked = event(id=2, acknowledgements=(Acknowledgement(time=T0, user="op", text="done"),))
    text = render.history_table([event(id=1), acked], lambda e: True)
    lines = text.splitlines()
    assert lines[0].split() == [
        "ID",
        "TIME",
        "CONTEXT",
        "EVENT",
        "LEVEL",
        "AUTHOR",
        "ACKS",
        "MESSAGE",
        "DATA",
    ]
    assert " needed " in lines[1] and " 1 " in lines[2]
    assert "code=E42, message=pump stalled" in lines[1]


def test_event_detail_has_data_table_and_acknowledgements():
    acked = event(acknowledgements=(Acknowledgement(time=T0, user="op", text="replaced the fuse"),))
    text = render.event_detail(
        acked, {"description": "The device reported an error.", "requires_acknowledgement": True}
    )
    assert "event 912000000000000001  devices.plc7/error  ERROR" in text
    assert "The device reported an error." in text and "required, given 1x" in text
    assert "code  message" in text and "E42   pump stalled" in text
    assert "op    replaced the fuse" in text
    pending = render.event_detail(event(), {"requires_acknowledgement": True})
    assert "PENDING" in pending and "(no acknowledgements)" in pending


def test_definition_detail_lists_fields_with_types_defaults_and_limits():
    definition = {
        "name": "alert",
        "description": "The alert was raised.",
        "help": "Deal with it, then acknowledge.",
        "level": "WARNING",
        "persistent": True,
        "expiration": 90 * 86400,
        "permissions": "observer",
        "fire_permissions": "operator",
        "group": "alerts",
        "hidden": False,
        "requires_acknowledgement": True,
        "format": {
            "min_records": 1,
            "max_records": 1,
            "fields": [
                {
                    "name": "message",
                    "type": "string",
                    "nullable": False,
                    "min": 1,
                    "max": 500,
                    "description": "What",
                },
                {"name": "severity", "type": "string", "allowed": ["low", "high"], "default": "low"},
                {"name": "cause", "type": "string", "nullable": True},
            ],
        },
    }
    text = render.definition_detail("alerts.pump", definition)
    assert text.startswith("alerts.pump/alert  The alert was raised.")
    assert "persistent, kept 90d" in text and "receive: observer, fire: operator" in text
    assert "Deal with it, then acknowledge." in text
    assert "message   string   -        length 1..500" in text
    assert "severity  string   low      one of low, high" in text
    assert "cause     string?" in text
    assert "(1 record)" in text


def test_definitions_table_shows_level_persistence_expiration():
    text = render.definitions_table(
        [
            {"name": "b", "level": "INFO", "persistent": False, "description": "x"},
            {
                "name": "a",
                "level": "ERROR",
                "persistent": True,
                "expiration": 3600,
                "requires_acknowledgement": True,
            },
        ]
    )
    lines = text.splitlines()
    assert lines[1].split()[:6] == ["a", "ERROR", "yes", "1h", "(definition)", "yes"]
    assert lines[2].split()[:5] == ["b", "INFO", "no", "-", "-"]


def test_retention_names_where_the_lifetime_comes_from():
    table = {"seconds": 2 * 86400, "source": "table", "mask": "devices.**", "event": "measurement"}
    cases = [
        ({"expiration": 86400, "retention": table}, "2d (expiration table: devices.** measurement)"),
        ({"expiration": 86400, "retention": {"seconds": 86400, "source": "definition"}}, "1d (definition)"),
        ({"expiration": None, "retention": {"seconds": 864000, "source": "default"}}, "10d (server default)"),
        ({"expiration": 3600}, "1h (definition)"),  # a server that does not send the retention
    ]
    for definition, expected in cases:
        assert render.retention_text({"persistent": True, **definition}) == expected


def test_tree_text_draws_branches_and_cuts_long_child_lists():
    node = {
        "path": "",
        "name": "",
        "description": "the root",
        "children": [
            {
                "path": "devices",
                "name": "devices",
                "children": [{"name": f"d{i}", "children": []} for i in range(5)],
            },
            {"path": "users", "name": "users", "children": []},
        ],
    }
    text = render.tree_text(node, limit=3)
    assert text.splitlines()[:3] == ["root  the root", "├── devices", "│   ├── d0"]
    assert "│   └── … and 2 more" in text and text.splitlines()[-1] == "└── users"


def test_error_line_is_one_line():
    assert render.error_line("column 3: bad\n  x\n  ^", colour=False) == "error: column 3: bad x ^"


def test_the_message_labels_and_instructions_are_shown_with_the_event():
    from linkserver.core.events import Shown

    shown = Shown(message="pump 7 stalled", labels=[{"code": "stalled"}], instructions="Restart the pump.")
    coded = event(display=shown)
    assert "devices.plc7/error #912000000000000001  pump 7 stalled | code=stalled" in render.event_line(coded)
    listing = render.history_table([coded]).splitlines()
    assert "pump 7 stalled" in listing[1] and "code=stalled, message=pump stalled" in listing[1]
    detail = render.event_detail(coded, {"description": "An error."})
    assert detail.splitlines()[1] == "  pump 7 stalled"
    assert "stalled (E42)" in detail and "instructions\n  Restart the pump." in detail
    with_definition = render.event_detail(coded, {"instructions": "Call the plant."})
    assert "instructions\n  Call the plant." in with_definition
