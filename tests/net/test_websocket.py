"""WebSocket sessions against a real server: firing, subscriptions, gaps and resuming."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from net_helpers import Live, recv_json, request

from linkserver.net.protocol import Limits


def collect(ws: Any, count: int, kind: str | None = None, timeout: float = 10) -> list[dict[str, Any]]:
    """The next ``count`` messages (of type ``kind``, others skipped)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        message = recv_json(ws, max(0.1, deadline - time.monotonic()))
        if kind is None or message["type"] == kind:
            found.append(message)
    return found


def unbatched(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with each ``events`` batch written as its ``event`` messages."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["type"] == "events":
            out += [{"type": "event", "subscription": m["subscription"], "event": e} for e in m["events"]]
        else:
            out.append(m)
    return out


def test_many_fires_over_one_connection_are_answered_in_order(live: Live, device: str) -> None:
    with live.ws("operator") as ws:
        for ref in range(300):
            ws.send(
                json.dumps(
                    {
                        "type": "fire",
                        "ref": ref,
                        "context": device,
                        "event": "stateChanged",
                        "data": {"old": "offline", "new": "online"} if ref != 150 else {"old": "x"},
                    }
                )
            )
        answers = collect(ws, 300)
    assert [a["ref"] for a in answers] == list(range(300))
    ids = [a["id"] for a in answers if a["type"] == "fired"]
    assert len(ids) == 299 and ids == sorted(ids)
    assert answers[150]["type"] == "error" and answers[150]["error"]["type"] == "DataTableError"
    stored = live.server.history.count(_query(device))
    assert stored == 299


def _query(device: str) -> Any:
    from linkserver.history.base import HistoryQuery

    return HistoryQuery(masks=(device,), names=("stateChanged",))


def test_fire_batch_over_websocket(live: Live, device: str) -> None:
    with live.ws("operator") as ws:
        answer = request(
            ws,
            {
                "type": "fire_batch",
                "ref": "b1",
                "durable": True,
                "events": [
                    {"context": device, "event": "connected"},
                    {"context": "devices.missing", "event": "connected"},
                    {"context": device, "event": "disconnected", "level": "ERROR"},
                ],
            },
        )
    assert answer["type"] == "fired_batch" and answer["ref"] == "b1"
    first, missing, last = answer["results"]
    assert first["id"] < last["id"]
    assert missing["error"]["type"] == "ContextNotFound"
    assert live.server.history.get(last["id"]).level.name == "ERROR"


def test_live_events_are_pushed_until_unsubscribed(live: Live, device: str) -> None:
    with live.ws("observer") as ws, live.client("operator") as firer:
        sub = request(
            ws,
            {
                "type": "subscribe",
                "ref": 1,
                "mask": device,
                "event": "stateChanged",
                "filter": 'data.new == "failed"',
            },
        )
        assert sub["type"] == "subscribed"
        firer.post(
            "/fire",
            json={"context": device, "event": "stateChanged", "data": {"old": "offline", "new": "online"}},
        )
        fired = firer.post(
            "/fire",
            json={"context": device, "event": "stateChanged", "data": {"old": "online", "new": "failed"}},
        ).json()["event"]
        pushed = recv_json(ws)
        assert pushed == {"type": "event", "subscription": sub["subscription"], "event": fired}
        assert request(ws, {"type": "unsubscribe", "ref": 2, "subscription": sub["subscription"]})[
            "type"
        ] == ("unsubscribed")
        firer.post(
            "/fire",
            json={"context": device, "event": "stateChanged", "data": {"old": "failed", "new": "failed"}},
        )
        assert request(ws, {"type": "ping", "ref": 3}) == {"type": "pong", "ref": 3}


@pytest.mark.parametrize("batch", [False, True])
def test_a_slow_reader_gets_a_gap_and_never_slows_the_firer(make_live: Any, batch: bool) -> None:
    live = make_live(limits=Limits(queue_size=20))
    device = live.new_device()
    total = 1500
    with live.ws("operator", compression=None, max_queue=2) as ws:
        subscribe = {"type": "subscribe", "ref": 1, "mask": device, "event": "error", "batch": batch}
        sid = request(ws, subscribe)["subscription"]
        started = time.monotonic()
        fired = [
            live.server.fire(device, "error", {"code": "E1", "message": "x" * 20_000}).id
            for _ in range(total)
        ]
        firing_time = time.monotonic() - started
        assert firing_time < 5  # the firer never waited for the reader
        messages: list[dict[str, Any]] = []
        while True:  # read everything that is on its way, until it goes quiet
            try:
                messages.append(recv_json(ws, timeout=0.5))
            except TimeoutError:
                break
        later = live.server.fire(device, "error", {"code": "E2", "message": "after"}).id
        messages.append(recv_json(ws))
    assert batch or all(m["type"] != "events" for m in messages)
    messages = unbatched(messages)
    received = [m["event"]["id"] for m in messages if m["type"] == "event"]
    gaps = [m for m in messages if m["type"] == "gap"]
    assert gaps, "the reader was never told about lost events"
    assert all(g["subscription"] == sid for g in gaps)
    assert sum(g["dropped"] for g in gaps) + len(received) == total + 1
    for gap in gaps:  # every gap names exactly the events that did not arrive
        index = messages.index(gap)
        before = [m["event"]["id"] for m in messages[:index] if m["type"] == "event"]
        assert gap["last_delivered_id"] == before[-1]
        lost = [i for i in fired if gap["last_delivered_id"] < i <= gap["last_dropped_id"]]
        assert len(lost) == gap["dropped"] and not set(lost) & set(received)
    assert received == sorted(received) and received[-1] == later


@pytest.mark.parametrize("batch", [False, True])
def test_resume_from_replays_history_then_goes_live_without_gaps_or_duplicates(
    live: Live, batch: bool
) -> None:
    device = live.new_device("resume")
    old = [live.server.fire(device, "connected", durable=True).id for _ in range(30)]
    stop = threading.Event()
    during: list[int] = []

    def keep_firing() -> None:
        while not stop.is_set() and len(during) < 200:
            during.append(live.server.fire(device, "connected").id)
            time.sleep(0.001)

    firer = threading.Thread(target=keep_firing)
    with live.ws("operator") as ws:
        firer.start()
        subscribe = {"type": "subscribe", "ref": 1, "mask": device, "event": "connected"}
        answer = request(ws, {**subscribe, "resume_from": old[9], "batch": batch})
        assert answer["type"] == "subscribed"
        time.sleep(0.1)
        stop.set()
        firer.join()
        expected = old[10:] + during
        got: list[int] = []
        while len(got) < len(expected):
            got += [m["event"]["id"] for m in unbatched(collect(ws, 1)) if m["type"] == "event"]
        assert request(ws, {"type": "ping", "ref": 2}) == {"type": "pong", "ref": 2}  # nothing more pending
    assert got == expected


def test_resume_from_and_history_on_sqlite(make_live: Any) -> None:
    live = make_live(database_url="sqlite")
    device = live.new_device("sql")
    with live.ws("operator") as ws:
        answer = request(
            ws,
            {
                "type": "fire_batch",
                "ref": 1,
                "events": [
                    {"context": device, "event": "stateChanged", "data": {"old": "offline", "new": s}}
                    for s in ("starting", "online", "degraded", "failed")
                ],
            },
        )
        ids = [r["id"] for r in answer["results"]]  # not durable: the replay must flush first
        request(
            ws,
            {
                "type": "subscribe",
                "ref": 2,
                "mask": "devices.*",
                "event": "stateChanged",
                "filter": 'data.new != "online"',
                "resume_from": ids[0],
            },
        )
        replayed = [m["event"]["id"] for m in collect(ws, 2, "event")]
        # durable: the history page below must find it committed
        later = live.server.fire(device, "stateChanged", {"old": "failed", "new": "offline"}, durable=True).id
        assert [m["event"]["id"] for m in collect(ws, 1, "event")] == [later]
    assert replayed == [ids[2], ids[3]]
    with live.client("observer") as client:
        page = client.get("/history", params={"mask": device, "order": "oldest", "count": "true"}).json()
    assert [e["id"] for e in page["events"]] == [*ids, later] and page["count"] == 5
