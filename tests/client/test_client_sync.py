"""The blocking client against a real server: calls, errors, history, subscriptions."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from client_helpers import OBSERVER_PASSWORD, LiveServer

from linkserver.client import AuthenticationFailed, Client, Gap, HistoryPage, ServerUnavailable
from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    DataTableError,
    EventNotDefined,
    EventNotFound,
    FilterError,
    PermissionDenied,
)
from linkserver.core.events import Event
from linkserver.core.levels import Level


def reading(value: float) -> list[dict[str, Any]]:
    return [{"quantity": "temperature", "value": value, "unit": "degC"}]


@pytest.fixture
def plc(client: Client) -> str:
    return client.add_context("devices.plc7", description="PLC 7")


def test_me_and_local_credentials_from_the_file(client: Client) -> None:
    assert client.credentials.source.endswith("admin.credentials")
    assert client.me()["user"] == "admin"


def test_fire_returns_the_stored_event(client: Client, plc: str) -> None:
    event = client.fire(plc, "measurement", reading(21.5), level="warning", durable=True)
    assert isinstance(event, Event)
    assert (event.context, event.name, event.level, event.author) == (
        plc,
        "measurement",
        Level.WARNING,
        "admin",
    )
    assert event.data == ({"quantity": "temperature", "value": 21.5, "unit": "degC"},)
    assert client.event(event.id) == event


def test_fire_errors_keep_their_linkserver_classes(client: Client, plc: str) -> None:
    with pytest.raises(ContextNotFound, match="devices.nope"):
        client.fire("devices.nope", "measurement", reading(1))
    with pytest.raises(EventNotDefined, match="defined there: .*measurement"):
        client.fire(plc, "measurment", reading(1))
    with pytest.raises(DataTableError) as caught:
        client.fire(plc, "measurement", [{"quantity": "t", "value": "warm", "colour": "red"}])
    assert set(caught.value.fields) == {"[0].value", "[0].colour"}
    with pytest.raises(ContextExists):
        client.add_context(plc)


def test_batch_reports_each_result_in_order(client: Client, plc: str) -> None:
    results = client.fire_batch(
        [
            (plc, "measurement", reading(1)),
            {"context": plc, "event": "error", "data": {"code": "E1", "message": "x"}, "level": "FATAL"},
            (plc, "nothing"),
            (plc, "measurement", reading(3)),
        ],
        durable=True,
    )
    assert [type(r) for r in results] == [Event, Event, EventNotDefined, Event]
    assert results[1].level is Level.FATAL
    stored = client.history(mask=plc, order="oldest")
    assert [e.id for e in stored] == [results[0].id, results[1].id, results[3].id]


def test_history_pages_through_cursors(client: Client, plc: str) -> None:
    fired = [
        e.id for e in client.fire_batch([(plc, "measurement", reading(i)) for i in range(7)], durable=True)
    ]
    first = client.history(mask="devices.**", event="measurement", limit=3, order="oldest", count=True)
    assert isinstance(first, HistoryPage)
    assert [e.id for e in first] == fired[:3] and first.next_cursor and first.count == 7
    assert [e.id for e in client.iter_history(mask="devices.**", limit=3, order="oldest")] == fired
    newest = client.history(mask="devices.**", limit=2)
    assert [e.id for e in newest] == fired[::-1][:2]
    assert (
        client.history(mask="devices.**", filter="data.value >= 5", order="oldest").events[0].id == fired[5]
    )


def test_acknowledge_delete_and_purge(client: Client, plc: str) -> None:
    event = client.fire(plc, "error", {"code": "E7", "message": "overheated"}, durable=True)
    assert client.history(mask=plc, acknowledged=False).events[0].id == event.id
    acked = client.acknowledge(event.id, "fan replaced")
    assert [(a.user, a.text) for a in acked.acknowledgements] == [("admin", "fan replaced")]
    assert client.history(mask=plc, acknowledged=False).events == ()
    assert client.purge().events == 0
    client.delete(event.id)
    with pytest.raises(EventNotFound):
        client.event(event.id)


def test_tree_context_and_removal(client: Client, plc: str) -> None:
    tree = client.tree(depth=2)
    devices = next(c for c in tree["children"] if c["name"] == "devices")
    assert [c["path"] for c in devices["children"]] == [plc]
    context = client.context(plc)
    assert context["description"] == "PLC 7"
    fields = next(d for d in context["events"] if d["name"] == "measurement")["format"]["fields"]
    assert [f["type"] for f in fields] == ["string", "float", "string"]
    assert client.remove_context(plc) == [plc]
    with pytest.raises(ContextNotFound):
        client.context(plc)


def test_an_observer_may_read_but_not_fire(live: LiveServer, client: Client, plc: str) -> None:
    with Client(live.url, user="watcher", password=OBSERVER_PASSWORD) as watcher:
        assert watcher.me()["grants"] == {"**": "observer"}
        with pytest.raises(PermissionDenied):
            watcher.fire(plc, "measurement", reading(1))
        event = client.fire(plc, "error", {"code": "E1", "message": "m"}, durable=True)
        assert watcher.event(event.id) == event
        with pytest.raises(PermissionDenied):
            watcher.acknowledge(event.id, "not mine to do")


def test_wrong_password_or_token_is_authentication_failed(live: LiveServer) -> None:
    with (
        Client(live.url, user="admin", password="wrong") as wrong,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        wrong.me()
    assert "wrong user name or password" in str(caught.value)
    with Client(live.url, token="made.up") as made_up:
        with pytest.raises(AuthenticationFailed):
            made_up.me()
        with pytest.raises(AuthenticationFailed):
            made_up.subscribe()


def test_an_expired_session_logs_in_again(live: LiveServer, client: Client) -> None:
    client.me()
    live.restart_http()  # a new app: every session token is forgotten
    assert client.me()["user"] == "admin"


def test_unreachable_server_is_server_unavailable(unused_url: str) -> None:
    with Client(unused_url, token="t", timeout=2) as client:
        with pytest.raises(ServerUnavailable, match="cannot reach LinkServer at .*linkserver serve"):
            client.me()
        with pytest.raises(ServerUnavailable):
            client.subscribe()


def test_subscription_gets_live_events_in_order(client: Client, plc: str) -> None:
    with client.subscribe("devices.*", "measurement", filter="data.value >= 10") as subscription:
        fired = [client.fire(plc, "measurement", reading(v)) for v in (5, 10, 20)]
        client.fire(plc, "error", {"code": "E1", "message": "not measured"})
        got = [subscription.get(timeout=5), subscription.get(timeout=5)]
        assert [e.id for e in got] == [fired[1].id, fired[2].id]
        assert subscription.get(timeout=0.3) is None
        assert subscription.last_id == fired[2].id
    assert list(subscription) == []


def test_a_burst_arrives_complete_and_in_order_through_batches(client: Client, plc: str) -> None:
    with client.subscribe(plc, "measurement") as subscription:
        kinds: list[str] = []
        receive = subscription.state.receive_text
        subscription.state.receive_text = lambda m: (kinds.append(json.loads(m)["type"]), receive(m))[1]  # type: ignore[method-assign]
        fired = client.fire_batch([(plc, "measurement", reading(i)) for i in range(500)])
        got = [subscription.get(timeout=5) for _ in fired]
        assert [e.id for e in got if e is not None] == [e.id for e in fired if isinstance(e, Event)]
        assert subscription.get(timeout=0.3) is None
        assert (subscription.state.delivered, subscription.state.duplicates) == (500, 0)
        assert "events" in kinds and len(kinds) < 500  # batched: fewer messages than events


def test_subscribe_raises_the_servers_refusal(client: Client) -> None:
    with pytest.raises(FilterError):
        client.subscribe("devices.**", "measurement", filter="data.value >>> 3")
    with pytest.raises(EventNotDefined):
        client.subscribe("devices", "noSuchEvent")


def test_subscription_resumes_from_an_explicit_id(client: Client, plc: str) -> None:
    fired = client.fire_batch([(plc, "measurement", reading(i)) for i in range(4)], durable=True)
    with client.subscribe(plc, "measurement", resume_from=fired[1].id) as subscription:
        assert [subscription.get(timeout=5).id for _ in range(2)] == [fired[2].id, fired[3].id]


def test_session_fires_pipelined_batches(client: Client, plc: str) -> None:
    with client.session() as session:
        assert isinstance(session.fire(plc, "measurement", reading(1)), int)
        with pytest.raises(EventNotDefined):
            session.fire(plc, "bogus")
        batches = [[(plc, "measurement", reading(i))] * 10 for i in range(6)]
        results = list(session.fire_batches(batches, window=3, durable=True))
    assert len(results) == 6 and all(isinstance(i, int) for batch in results for i in batch)
    assert client.history(mask=plc, count=True, limit=1).count == 61


def test_client_is_usable_from_several_threads(client: Client, plc: str) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(5):
                client.fire(plc, "measurement", reading(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert client.history(mask=plc, count=True, limit=1).count == 20


def test_gaps_reach_the_callback_and_the_iterator(client: Client, live: LiveServer, plc: str) -> None:
    gaps: list[Gap] = []
    subscription = client.subscribe(plc, "error", on_gap=gaps.append, yield_gaps=True, queue_size=1)
    try:
        # The client does not read: its socket buffers fill (batches of ~2 KB events, fewer than
        # 200 per message), then the server's per-session queue (1000) overflows.
        for _ in range(10_000):
            live.server.fire(plc, "error", {"code": "E1", "message": "x" * 2000})
        items = []
        while True:
            item = subscription.get(timeout=2)
            if item is None:
                break
            items.append(item)
        found = [i for i in items if isinstance(i, Gap)]
        assert found and found == gaps
        assert sum(g.dropped for g in found) + sum(isinstance(i, Event) for i in items) == 10_000
    finally:
        subscription.close()


def test_session_fires_many_single_events_pipelined(client: Client, plc: str) -> None:
    events = [(plc, "measurement", reading(i)) for i in range(200)]
    events.insert(100, (plc, "bogus"))
    with client.session() as session:
        results = list(session.fire_many(events, durable=True, window=50))
    assert isinstance(results.pop(100), EventNotDefined)
    assert all(isinstance(i, int) for i in results) and results == sorted(results)
    assert client.history(mask=plc, count=True, limit=1).count == 200
