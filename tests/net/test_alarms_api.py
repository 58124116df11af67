"""GET /alarms (filters, states, cursors), GET /alarms/{id}, acknowledge, unacknowledge and clear over
real HTTP with history's permissions, and alarmChanged on a WebSocket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alarm_helpers import alarm_catalog

from linkserver.testing import RunningServer

USERS = {
    "operator": {"**": "observer", "net.**": "operator"},
    "observer": {"**": "observer"},
    "outsider": {"users.**": "admin"},
    "sw1only": {"net.sw1": "observer"},
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("alarms")
    with RunningServer(base / "data", catalog=alarm_catalog(base / "contexts"), users=USERS) as server:
        for name in ("sw1", "sw2"):
            server.server.engine.add_context(f"net.{name}")
        yield server


def fire(live: RunningServer, path: str, event: str, index: int, level: str | None = None) -> int:
    return live.server.fire(path, event, {"ifIndex": index}, level=level, durable=True).id


def test_the_list_filters_pages_and_answers_what_the_web_view_reads(live: RunningServer) -> None:
    first = fire(live, "net.sw1", "linkDown", 1)
    fire(live, "net.sw1", "linkDown", 1, "ERROR")
    for index in range(2, 6):
        fire(live, "net.sw2", "linkDown", index)
    with live.http("observer") as http:
        answer = http.get("/alarms", params={"mask": "net.sw1"})
        assert answer.status_code == 200, answer.text
        (alarm,) = answer.json()["alarms"]
        assert {
            k: alarm[k] for k in ("id", "key", "state", "level", "context", "name", "count", "event")
        } == {
            "id": first,
            "key": "net.sw1:linkDown:1",
            "state": "open",
            "level": "ERROR",
            "context": "net.sw1",
            "name": "linkDown",
            "count": 2,
            "event": alarm["event"],
        }
        assert (
            alarm["first"] <= alarm["last"] and alarm["acknowledgements"] == [] and alarm["cleared"] is None
        )
        # The last event's message, as GET /events/{id} renders it for that event.
        assert alarm["message"] == "interface 1 of net.sw1 is down (ERROR)"
        assert alarm["message"] == http.get(f"/events/{alarm['event']}").json()["event"]["message"]
        keys, cursor = [], None
        while True:
            params = [("mask", "net.sw2"), ("event", "linkDown"), ("limit", "3"), ("state", "open")]
            page = http.get("/alarms", params=params + ([("cursor", cursor)] if cursor else [])).json()
            keys += [a["key"] for a in page["alarms"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert keys == [f"net.sw2:linkDown:{i}" for i in (5, 4, 3, 2)]
        page = http.get("/alarms", params={"filter": "data.ifIndex >= 4", "min_level": "WARNING"}).json()
        assert [a["key"] for a in page["alarms"]] == ["net.sw2:linkDown:5", "net.sw2:linkDown:4"]
        bad = http.get("/alarms", params={"filter": "data.ifIndx == 1"})
        assert bad.status_code == 400 and "ifIndx" in bad.json()["error"]["message"]
        bad_state = http.get("/alarms", params={"state": "gone"})
        assert bad_state.status_code == 400
        assert "'gone' is not one of: acknowledged, cleared, open" in bad_state.json()["error"]["message"]
        one = http.get(f"/alarms/{first}").json()["alarm"]
        assert (one["key"], one["message"]) == ("net.sw1:linkDown:1", alarm["message"])
        assert http.get("/alarms/1").status_code == 404
    with live.http("outsider") as http:
        assert http.get("/alarms").json()["alarms"] == []
        assert http.get(f"/alarms/{first}").status_code == 404  # may not see it: it does not exist


def test_operators_acknowledge_unacknowledge_and_clear_observers_may_not(live: RunningServer) -> None:
    alarm_id = fire(live, "net.sw1", "linkDown", 10)
    with live.http("observer") as http:
        refused = http.post(f"/alarms/{alarm_id}/acknowledge", json={"text": "mine"})
        assert refused.status_code == 403 and "needs operator" in refused.json()["error"]["message"]
        assert http.post(f"/alarms/{alarm_id}/clear").status_code == 403
    with live.http("operator") as http:
        assert http.post(f"/alarms/{alarm_id}/acknowledge", json={"text": "  "}).status_code == 400
        acked = http.post(f"/alarms/{alarm_id}/acknowledge", json={"text": "new cable"}).json()["alarm"]
        assert acked["state"] == "acknowledged"
        assert [(a["user"], a["text"]) for a in acked["acknowledgements"]] == [("operator", "new cable")]
        assert http.post(f"/alarms/{alarm_id}/unacknowledge").json()["alarm"]["state"] == "open"
        cleared = http.post(f"/alarms/{alarm_id}/clear").json()["alarm"]
        assert cleared["state"] == "cleared"
        assert {k: cleared["cleared"][k] for k in ("by", "user", "event")} == {
            "by": "user",
            "user": "operator",
            "event": None,
        }
        listed = http.get("/alarms", params=[("state", "cleared"), ("mask", "net.sw1")]).json()["alarms"]
        assert alarm_id in [a["id"] for a in listed]


def test_alarm_changes_arrive_live_on_a_websocket(live: RunningServer) -> None:
    with live.ws("observer") as ws:
        ws.send(json.dumps({"type": "subscribe", "mask": "net.**", "event": "alarmChanged", "ref": 1}))
        while json.loads(ws.recv(timeout=5)).get("type") != "subscribed":
            pass
        alarm_id = fire(live, "net.sw2", "linkDown", 42)
        fire(live, "net.sw2", "linkUp", 42)
        states = []
        while "cleared" not in states:
            message = json.loads(ws.recv(timeout=10))
            if message.get("type") == "event" and message["event"]["name"] == "alarmChanged":
                record = message["event"]["data"][0]
                assert record["id"] == alarm_id and record["key"] == "net.sw2:linkDown:42"
                states.append(record["state"])
        assert states[-1] == "cleared"


def test_the_document_lists_the_alarm_operations(live: RunningServer, tmp_path: Path) -> None:
    import httpx

    paths = httpx.get(f"{live.url}/openapi.json").json()["paths"]
    assert {"/api/v1/alarms", "/api/v1/alarms/{id}", "/api/v1/alarms/{id}/acknowledge"} <= set(paths)


def alarm_events(http, alarm_id: int, **params: object) -> list[int]:  # noqa: ANN001
    """Every page of GET /alarms/{id}/events, by cursor."""
    ids: list[int] = []
    cursor = None
    while True:
        paged = {**params, **({"cursor": cursor} if cursor else {})}
        answer = http.get(f"/alarms/{alarm_id}/events", params=paged)
        assert answer.status_code == 200, answer.text
        ids += [event["id"] for event in answer.json()["events"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return ids


def test_an_event_names_its_alarm_and_the_alarm_lists_its_events(live: RunningServer) -> None:
    first = fire(live, "net.sw1", "linkDown", 20)
    other = fire(live, "net.sw1", "linkDown", 21)  # another key: another alarm
    second = fire(live, "net.sw1", "linkDown", 20)
    up = fire(live, "net.sw1", "linkUp", 20)
    with live.http("observer") as http:
        raised = http.get(f"/events/{first}").json()["event"]["alarms"]
        key = "net.sw1:linkDown:20"
        assert raised == [{"key": key, "role": "raises", "id": first, "state": "cleared", "count": 2}]
        cleared = http.get(f"/events/{up}").json()["event"]["alarms"]
        assert cleared == [{"key": key, "role": "clears", "id": first, "state": "cleared", "count": 2}]
        assert http.get(f"/events/{other}").json()["event"]["alarms"][0]["id"] == other
        assert alarm_events(http, first) == [up, second, first]  # newest first, the clear included
        assert alarm_events(http, first, limit=1, order="oldest") == [first, second, up]
        bad_cursor = http.get(f"/alarms/{first}/events", params={"cursor": "nonsense"})
        assert bad_cursor.status_code == 400 and "history" not in bad_cursor.json()["error"]["message"]
        again = fire(live, "net.sw1", "linkDown", 20)  # after the clear: a new alarm
        assert alarm_events(http, again) == [again]
        old = http.get(f"/events/{first}").json()["event"]["alarms"]
        assert old == [{"key": key, "role": "raises", "id": None, "state": None, "count": None}]
        plain = fire(live, "net.sw1", "linkDown", 20, "ERROR")
        assert http.get(f"/alarms/{again}/events").json()["events"][0]["id"] == plain
    with live.http("outsider") as http:
        assert http.get(f"/alarms/{again}/events").status_code == 404  # may not see it: no such alarm


def test_an_alarms_events_are_those_the_reader_may_receive_exactly_as_in_history(live: RunningServer) -> None:
    # One alarm per site across switches (the key does not name the context).
    east = [
        live.server.fire(path, "powerLost", {"site": "east"}, durable=True).id
        for path in ("net.sw2", "net.sw1", "net.sw2", "net.sw1")
    ]
    with live.http("observer") as http:
        assert alarm_events(http, east[0]) == east[::-1]
    with live.http("sw1only") as http:
        # The alarm's last event is in net.sw1, so it sees the alarm, but only net.sw1's events.
        assert alarm_events(http, east[0]) == [east[3], east[1]]
        history = http.get("/history", params={"event": "powerLost", "filter": f"id >= {east[0]}"}).json()
        assert [e["id"] for e in history["events"]] == [east[3], east[1]]
        assert http.get(f"/events/{east[0]}").status_code == 404
        shown = http.get(f"/events/{east[1]}").json()["event"]["alarms"]
        assert shown == [{"key": "power:east", "role": "raises", "id": east[0], "state": "open", "count": 4}]
    live.server.fire("net.sw2", "powerLost", {"site": "east"}, durable=True)  # now last in net.sw2
    with live.http("sw1only") as http:
        assert http.get(f"/alarms/{east[0]}/events").status_code == 404  # the alarm is net.sw2's now
        shown = http.get(f"/events/{east[1]}").json()["event"]["alarms"]
        assert shown == [{"key": "power:east", "role": "raises", "id": None, "state": None, "count": None}]
