"""The WebSocket session protocol without a socket: messages in, outbox out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from net_helpers import CONTEXTS

from linkserver.core.permissions import Grants, Principal
from linkserver.loading.config import ServerConfig
from linkserver.loading.contexts import load_contexts
from linkserver.net.gateway import Gateway
from linkserver.net.protocol import Limits, Session
from linkserver.server.app import LinkServer

OPERATOR = Principal(name="op", grants=Grants({"**": "observer", "devices.**": "operator"}))
PLC1 = Principal(name="plc1only", grants=Grants({"devices.plc1": "operator"}))


@pytest.fixture
def server(tmp_path: Any) -> Iterator[LinkServer]:
    config = ServerConfig.default(tmp_path / "data", database_url="memory://")
    server = LinkServer(config, load_contexts([CONTEXTS])).start()
    for name in ("plc1", "plc2"):
        server.engine.add_context(f"devices.{name}")
    yield server
    server.stop()


def session_for(server: LinkServer, principal: Principal = OPERATOR, **limits: Any) -> Session:
    return Session(Gateway(server), principal, Limits(**limits))


def say(session: Session, **message: Any) -> list[dict[str, Any]]:
    session.receive(json.dumps(message))
    return session.take()


def drain(session: Session) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        while session.wants_pump:
            session.pump()
            out += session.take(1000)
        batch = session.take(1000)
        if not batch and not session.wants_pump:
            return out
        out += batch


def fire(server: LinkServer, device: str = "plc1", event: str = "connected", **data: Any) -> int:
    return server.fire(f"devices.{device}", event, data or None).id


def test_ping_is_answered_with_its_ref(server: LinkServer) -> None:
    assert say(session_for(server), type="ping", ref="a1") == [{"type": "pong", "ref": "a1"}]


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("{not json", "BadRequest", "not valid JSON"),
        ("[1, 2]", "BadRequest", "must be a JSON object"),
        ('{"ref": 1}', "BadRequest", "a message: 'type' is required"),
        ('{"type": "dance", "ref": 1}', "BadRequest", "unknown message type 'dance'"),
        (
            '{"type": "fire", "ref": 1, "context": 5, "event": "x"}',
            "BadRequest",
            "a fire message: 'context': expected `str`, got `int`",
        ),
        (
            '{"type": "fire", "ref": 1, "context": "devices.plc1", "event": "connected", "levl": 1}',
            "BadRequest",
            "unknown key 'levl'",
        ),
        ('{"type": "subscribe", "ref": 1}', "BadRequest", "a subscribe message: 'mask' is required"),
        ('{"type": "subscribe", "ref": 1, "mask": "devices.*", "filter": "level >>"}', "FilterError", ""),
        (
            '{"type": "subscribe", "ref": 1, "mask": "devices..x"}',
            "BadRequest",
            "'mask': expected a context mask",
        ),
        (
            '{"type": "subscribe", "ref": 1, "mask": "**", "resume_from": 99999999999999999999}',
            "BadRequest",
            "'resume_from': expected `int` <= 9223372036854775807",
        ),
        ('{"type": "ping", "ref": "\\ud800"}', "BadRequest", "lone UTF-16 surrogates"),
        (
            '{"type": "fire", "ref": 1, "context": "devices.plc1", "event": "\\udfff"}',
            "BadRequest",
            "surrogates",
        ),
        ('{"type": "unsubscribe", "ref": 1, "subscription": "s99"}', "NotFound", "no subscription 's99'"),
    ],
)
def test_bad_messages_get_an_error_and_the_session_goes_on(
    server: LinkServer, text: str, kind: str, needle: str
) -> None:
    session = session_for(server)
    session.receive(text)
    [answer] = session.take()
    assert answer["type"] == "error"
    assert answer["error"]["type"] == kind
    assert needle in answer["error"]["message"]
    assert say(session, type="ping", ref=2) == [{"type": "pong", "ref": 2}]


def test_fire_answers_with_the_id_and_stores_the_event(server: LinkServer) -> None:
    [answer] = say(
        session_for(server),
        type="fire",
        ref=7,
        context="devices.plc1",
        event="connected",
        data={"address": "10.0.0.1"},
        durable=True,
    )
    assert answer["type"] == "fired" and answer["ref"] == 7
    assert server.history.get(answer["id"]).record["address"] == "10.0.0.1"


def test_invalid_data_names_every_field_and_stores_nothing(server: LinkServer) -> None:
    [answer] = say(
        session_for(server),
        type="fire",
        ref=1,
        context="devices.plc1",
        event="error",
        data={"code": 5, "bogus": 1},
    )
    assert answer["error"]["type"] == "DataTableError"
    fields = {f["field"] for f in answer["error"]["fields"]}
    assert fields == {"code", "message", "bogus"}
    assert server.history.count(_all()) == 0


def _all() -> Any:
    from linkserver.history.base import HistoryQuery

    return HistoryQuery(names=("connected", "error"))


def test_fire_batch_answers_each_in_order(server: LinkServer) -> None:
    events = [
        {"context": "devices.plc1", "event": "connected"},
        {"context": "devices.nowhere", "event": "connected"},
        {"context": "devices.plc2", "event": "nothing"},
        "not an object",
        {"context": "devices.plc2", "event": "disconnected", "data": {"reason": "timeout"}},
    ]
    [answer] = say(session_for(server), type="fire_batch", ref="b", events=events, durable=True)
    results = answer["results"]
    assert answer["type"] == "fired_batch" and len(results) == 5
    assert "id" in results[0] and "id" in results[4] and results[0]["id"] < results[4]["id"]
    assert [r.get("error", {}).get("type") for r in results[1:4]] == [
        "ContextNotFound",
        "EventNotDefined",
        "BadRequest",
    ]


def test_limits_are_answered_with_errors_not_dropped(server: LinkServer) -> None:
    session = session_for(server, max_batch=2, max_message_bytes=300, max_subscriptions=1)
    [big] = say(
        session, type="fire_batch", ref=1, events=[{"context": "devices.plc1", "event": "connected"}] * 3
    )
    assert big["error"]["type"] == "TooLarge" and "limit is 2" in big["error"]["message"]
    session.receive(json.dumps({"type": "ping", "ref": 2, "pad": "x" * 400}))
    [huge] = session.take()
    assert huge["error"]["type"] == "TooLarge" and huge["ref"] is None
    [first] = say(session, type="subscribe", ref=3, mask="devices.*")
    [second] = say(session, type="subscribe", ref=4, mask="devices.*")
    assert second["error"]["type"] == "TooLarge" and "unsubscribe" in second["error"]["message"]
    assert (
        say(session, type="unsubscribe", ref=5, subscription=first["subscription"])[0]["type"]
        == "unsubscribed"
    )
    assert say(session, type="subscribe", ref=6, mask="devices.*")[0]["type"] == "subscribed"


def test_subscription_pushes_matching_events_until_unsubscribed(server: LinkServer) -> None:
    session = session_for(server)
    [answer] = say(
        session,
        type="subscribe",
        ref=1,
        mask="devices.*",
        event="disconnected",
        filter='data.reason == "timeout"',
        min_level="warning",
    )
    sid = answer["subscription"]
    fire(server, event="disconnected", reason="lost")
    wanted = fire(server, "plc2", event="disconnected", reason="timeout")
    fire(server, event="connected")
    assert [(m["type"], m["subscription"], m["event"]["id"]) for m in session.take()] == [
        ("event", sid, wanted)
    ]
    say(session, type="unsubscribe", ref=2, subscription=sid)
    fire(server, event="disconnected", reason="timeout")
    assert session.take() == []
    assert session.subscriptions == []


def test_the_answer_comes_before_the_first_pushed_event(server: LinkServer) -> None:
    session = session_for(server)

    class Racing(Gateway):
        def subscribe(self, *args: Any, **kwargs: Any) -> Any:
            subscription = super().subscribe(*args, **kwargs)
            fire(server)  # an event between the registration and the answer
            return subscription

    session.backend = Racing(server)
    messages = say(session, type="subscribe", ref=1, mask="devices.*")
    assert [m["type"] for m in messages] == ["subscribed", "event"]


def test_a_subscriber_never_sees_contexts_it_has_no_grant_for(server: LinkServer) -> None:
    session = session_for(server, PLC1)
    say(session, type="subscribe", ref=1, mask="**")
    fire(server, "plc2")
    mine = fire(server, "plc1")
    server.engine.add_context("devices.plc3")
    assert [m["event"]["id"] for m in session.take()] == [mine]


def test_unknown_event_error_lists_only_visible_events(server: LinkServer) -> None:
    session = session_for(server, PLC1)
    [answer] = say(session, type="subscribe", ref=1, mask="users.*", event="nope")
    assert answer["error"]["type"] == "EventNotDefined"
    assert "login" not in answer["error"]["message"]


def test_a_slow_reader_is_told_where_its_gap_is(server: LinkServer) -> None:
    session = session_for(server, queue_size=3)
    [answer] = say(session, type="subscribe", ref=1, mask="devices.plc1")
    sid = answer["subscription"]
    ids = [fire(server) for _ in range(10)]
    messages = session.take()
    assert [m["event"]["id"] for m in messages[:3]] == ids[:3]
    assert messages[3] == {
        "type": "gap",
        "subscription": sid,
        "last_delivered_id": ids[2],
        "last_dropped_id": ids[9],
        "dropped": 7,
    }
    later = fire(server)
    assert [m["event"]["id"] for m in session.take()] == [later]


def test_the_gap_comes_before_the_next_event_when_the_reader_catches_up(server: LinkServer) -> None:
    session = session_for(server, queue_size=2)
    sid = say(session, type="subscribe", ref=1, mask="devices.plc1")[0]["subscription"]
    ids = [fire(server) for _ in range(4)]
    first = session.take(1)  # the reader takes a little: room for one more
    after = fire(server)
    rest = session.take()
    assert [m["event"]["id"] for m in first] == ids[:1]
    assert [m["type"] for m in rest] == ["event", "gap", "event"]
    assert rest[1] == {
        "type": "gap",
        "subscription": sid,
        "last_delivered_id": ids[1],
        "last_dropped_id": ids[3],
        "dropped": 2,
    }
    assert rest[2]["event"]["id"] == after


def test_a_lone_live_event_is_taken_with_the_loss_owed_to_another_subscription(server: LinkServer) -> None:
    """One live event in the outbox is the usual push (take_text's short path), but not while
    another subscription is owed a gap: that is told as soon as the outbox is empty."""
    signals: list[int] = []
    session = session_for(server, queue_size=1)
    session.on_output = lambda: signals.append(1)
    first = say(session, type="subscribe", ref=1, mask="devices.plc1")[0]["subscription"]
    other = say(session, type="subscribe", ref=2, mask="devices.plc2")[0]["subscription"]
    kept = fire(server, "plc1")
    lost = fire(server, "plc2")  # the outbox holds one live event already: dropped
    messages = session.take()
    assert [(m["type"], m["subscription"]) for m in messages] == [("event", first), ("gap", other)]
    assert messages[0]["event"]["id"] == kept and messages[1]["last_dropped_id"] == lost
    signalled = len(signals)
    again = fire(server, "plc2")  # a lone live event now: taken whole, and the next one signals
    assert len(signals) == signalled + 1
    [message] = session.take()
    assert (message["subscription"], message["event"]["id"]) == (other, again)
    assert session.take() == [] and session.backlog == 0
    fire(server, "plc1")
    assert len(signals) == signalled + 2


def test_resume_from_sends_history_then_live_without_gaps_or_duplicates(server: LinkServer) -> None:
    stored = [fire(server, "plc1" if i % 2 else "plc2") for i in range(7)]
    session = session_for(server, replay_page=2)
    sid = say(session, type="subscribe", ref=1, mask="devices.*", event="connected", resume_from=stored[2])[
        0
    ]["subscription"]
    during = fire(server)  # persistent: in history and held live; sent once
    transient = server.fire("devices.plc1", "childAdded", {"name": "x", "path": "devices.plc1.x"}).id
    messages = drain(session)
    after = fire(server, "plc2")
    messages += session.take()
    ids = [m["event"]["id"] for m in messages]
    assert all(m["subscription"] == sid for m in messages)
    assert ids == stored[3:] + [during, after]
    assert transient not in ids  # another event name


def test_resume_from_delivers_live_events_fired_during_the_replay(server: LinkServer) -> None:
    old = [fire(server) for _ in range(3)]
    session = session_for(server, replay_page=1)
    say(session, type="subscribe", ref=1, mask="devices.plc1", resume_from=old[0])
    session.pump()
    live_only = server.fire("devices.plc1", "childAdded", {"name": "x", "path": "devices.plc1.x"}).id
    persistent = fire(server)
    ids = [m["event"]["id"] for m in drain(session)]
    assert sorted(ids) == sorted([*old[1:], live_only, persistent])
    assert len(ids) == len(set(ids))


def test_resume_replays_only_what_the_subscriber_may_see(server: LinkServer) -> None:
    fire(server, "plc2")
    mine = fire(server, "plc1")
    session = session_for(server, PLC1)
    say(session, type="subscribe", ref=1, mask="**", resume_from=0)
    assert [m["event"]["id"] for m in drain(session)] == [mine]


def test_close_cancels_every_subscription(server: LinkServer) -> None:
    before = len(server.engine.subscriptions)
    session = session_for(server)
    say(session, type="subscribe", ref=1, mask="devices.*")
    say(session, type="subscribe", ref=2, mask="alerts.*")
    assert len(server.engine.subscriptions) == before + 2
    session.close()
    assert len(server.engine.subscriptions) == before
    fire(server)
    assert session.take() == []


def test_output_is_signalled_once_per_drain(server: LinkServer) -> None:
    signals: list[int] = []
    session = Session(Gateway(server), OPERATOR, Limits(), on_output=lambda: signals.append(1))
    session.receive('{"type": "subscribe", "mask": "devices.*"}')
    for _ in range(5):
        fire(server)
    assert len(signals) == 1
    session.take()
    fire(server)
    assert len(signals) == 2


def test_a_subscription_made_while_the_session_closes_is_cancelled(server: LinkServer) -> None:
    session = session_for(server)

    class Closing(Gateway):
        def subscribe(self, *args: Any, **kwargs: Any) -> Any:
            subscription = super().subscribe(*args, **kwargs)
            session.close()  # the client went away meanwhile
            return subscription

    session.backend = Closing(server)
    before = len(server.engine.subscriptions)
    session.receive(json.dumps({"type": "subscribe", "mask": "devices.*"}))
    assert len(server.engine.subscriptions) == before
    session.receive(json.dumps({"type": "subscribe", "mask": "devices.*"}))
    assert len(server.engine.subscriptions) == before


def test_durable_fires_do_not_wait_for_each_other_and_are_answered_in_order(tmp_path: Any) -> None:
    import time
    from datetime import timedelta

    from linkserver.history.base import HistoryQuery

    # A 30 s linger: only the session's hurry can make these answers come quickly.
    config = ServerConfig.default(tmp_path / "data", writer_flush_interval=timedelta(seconds=30))
    server = LinkServer(config, load_contexts([CONTEXTS])).start()
    try:
        server.engine.add_context("devices.plc1")
        session = session_for(server)
        for n in range(40):
            session.receive(json.dumps({"type": "fire", "ref": n, "context": "devices.plc1",
                                        "event": "connected", "durable": True}))  # fmt: skip
            if n == 20:
                session.receive(json.dumps({"type": "ping", "ref": "p"}))
        answers: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(answers) < 41 and time.monotonic() < deadline:
            answers += session.take(1000)
            time.sleep(0.01)
        assert [a["ref"] for a in answers] == [*range(21), "p", *range(21, 40)]  # request order
        ids = [a["id"] for a in answers if a["type"] == "fired"]
        stored = server.history.query(HistoryQuery(newest_first=False, limit=100)).events
        assert [e.id for e in stored if e.name == "connected"] == ids  # each answered once committed
    finally:
        server.stop()


def test_a_durable_fire_is_answered_after_its_commit_without_blocking_the_session(tmp_path: Any) -> None:
    import sqlite3
    import time

    config = ServerConfig.default(tmp_path / "data")
    server = LinkServer(config, load_contexts([CONTEXTS])).start()
    try:
        server.engine.add_context("devices.plc1")
        session = session_for(server)
        locker = sqlite3.connect(tmp_path / "data" / "history.sqlite3", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock: commits wait
        try:
            started = time.monotonic()
            session.receive(json.dumps({"type": "fire", "ref": 1, "context": "devices.plc1",
                                        "event": "connected", "durable": True}))  # fmt: skip
            session.receive(json.dumps({"type": "ping", "ref": 2}))
            assert time.monotonic() - started < 2  # the session went on reading
            time.sleep(0.3)
            assert session.take() == []  # not committed yet, and the pong keeps its place
        finally:
            locker.execute("COMMIT")
            locker.close()
        answers: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while len(answers) < 2 and time.monotonic() < deadline:
            answers += session.take()
            time.sleep(0.01)
        assert [(a["type"], a["ref"]) for a in answers] == [("fired", 1), ("pong", 2)]
    finally:
        server.stop()
