"""Pushes on the wire: ``events`` batches, each event encoded once, one loop wake-up for many sessions."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from net_helpers import CONTEXTS

from linkserver.core.events import Acknowledgement
from linkserver.core.permissions import Grants, Principal
from linkserver.loading.config import ServerConfig
from linkserver.loading.contexts import load_contexts
from linkserver.net import push
from linkserver.net.codec import dumps
from linkserver.net.gateway import Gateway
from linkserver.net.protocol import Limits, Session
from linkserver.net.push import EncodedEvents, LoopWaker
from linkserver.server.app import LinkServer

OPERATOR = Principal(name="op", grants=Grants({"**": "observer", "devices.**": "operator"}))


@pytest.fixture
def server(tmp_path: Any) -> Iterator[LinkServer]:
    config = ServerConfig.default(tmp_path / "data", database_url="memory://")
    server = LinkServer(config, load_contexts([CONTEXTS])).start()
    for name in ("plc1", "plc2"):
        server.engine.add_context(f"devices.{name}")
    yield server
    server.stop()


def session_for(server: LinkServer, **limits: Any) -> Session:
    return Session(Gateway(server), OPERATOR, Limits(**limits))


def subscribe(session: Session, mask: str = "devices.plc1", **options: Any) -> str:
    session.receive(json.dumps({"type": "subscribe", "ref": 1, "mask": mask, "batch": True, **options}))
    [answer] = session.take()
    assert answer["type"] == "subscribed"
    return str(answer["subscription"])


def fire(server: LinkServer, device: str = "plc1", durable: bool = False) -> int:
    return server.fire(f"devices.{device}", "connected", durable=durable).id


def shape(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Each message as (type, the event ids it carries, or its ref)."""
    out: list[tuple[str, Any]] = []
    for m in messages:
        if m["type"] == "events":
            out.append(("events", [e["id"] for e in m["events"]]))
        elif m["type"] == "event":
            out.append(("event", m["event"]["id"]))
        else:
            out.append((m["type"], m.get("ref", m.get("last_dropped_id"))))
    return out


def event_ids(messages: list[dict[str, Any]]) -> list[int]:
    ids: list[int] = []
    for m in messages:
        if m["type"] == "events":
            ids += [e["id"] for e in m["events"]]
        elif m["type"] == "event":
            ids.append(m["event"]["id"])
    return ids


def drain(session: Session, limit: int = 1000) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        while session.wants_pump:
            session.pump()
            out += session.take(limit)
        taken = session.take(limit)
        if not taken and not session.wants_pump:
            return out
        out += taken


# -- the batched form ----------------------------------------------------------------


def test_events_taken_together_come_in_one_message_in_firing_order(server: LinkServer) -> None:
    session = session_for(server)
    sid = subscribe(session)
    ids = [fire(server) for _ in range(5)]
    [message] = session.take()
    assert message["type"] == "events" and message["subscription"] == sid
    assert [e["id"] for e in message["events"]] == ids
    assert set(message["events"][0]) >= {"id", "context", "name", "level", "created", "data"}


def test_a_lone_event_is_an_ordinary_event_message(server: LinkServer) -> None:
    session = session_for(server)
    sid = subscribe(session)
    only = fire(server)
    [message] = session.take()
    assert message["type"] == "event" and message["subscription"] == sid
    assert message["event"]["id"] == only


def test_without_batch_each_event_has_its_own_message(server: LinkServer) -> None:
    session = session_for(server)
    sid = subscribe(session, batch=False)
    ids = [fire(server) for _ in range(3)]
    assert shape(session.take()) == [("event", i) for i in ids]
    assert sid in session.subscriptions


def test_batch_must_be_true_or_false(server: LinkServer) -> None:
    session = session_for(server)
    session.receive(json.dumps({"type": "subscribe", "ref": 1, "mask": "devices.*", "batch": "yes"}))
    [answer] = session.take()
    assert answer["error"]["type"] == "BadRequest" and "'batch'" in answer["error"]["message"]


def test_a_gap_splits_the_batch_where_the_events_were_lost(server: LinkServer) -> None:
    session = session_for(server, queue_size=3)
    sid = subscribe(session)
    ids = [fire(server) for _ in range(5)]  # 3 queued, 2 dropped
    first = session.take(2)
    later = [fire(server) for _ in range(2)]  # room again: after the gap
    rest = session.take()
    assert shape(first) == [("events", ids[:2])]
    assert shape(rest) == [("event", ids[2]), ("gap", ids[4]), ("events", later)]
    assert rest[1] == {
        "type": "gap",
        "subscription": sid,
        "last_delivered_id": ids[2],
        "last_dropped_id": ids[4],
        "dropped": 2,
    }


def test_a_gap_found_when_caught_up_follows_the_batch(server: LinkServer) -> None:
    session = session_for(server, queue_size=3)
    subscribe(session)
    ids = [fire(server) for _ in range(6)]
    assert shape(session.take()) == [("events", ids[:3]), ("gap", ids[5])]


def test_answers_keep_their_place_between_batches(server: LinkServer) -> None:
    session = session_for(server)
    subscribe(session)
    before = [fire(server) for _ in range(2)]
    session.receive(json.dumps({"type": "ping", "ref": "p"}))
    after = [fire(server) for _ in range(2)]
    assert shape(session.take()) == [("events", before), ("pong", "p"), ("events", after)]


def test_two_subscriptions_each_keep_their_order(server: LinkServer) -> None:
    session = session_for(server)
    one = subscribe(session, "devices.plc1")
    everything = subscribe(session, "devices.*")
    ids = [fire(server, "plc1" if i % 2 else "plc2") for i in range(6)]
    messages = session.take()
    # each batch sits where its first event was: plc2's event came first
    assert [(m["type"], m["subscription"]) for m in messages] == [("events", everything), ("events", one)]
    assert event_ids(messages[:1]) == ids
    assert event_ids(messages[1:]) == ids[1::2]


def test_a_batch_stops_growing_at_its_size_limit(server: LinkServer, monkeypatch: Any) -> None:
    session = session_for(server)
    subscribe(session)
    events = [server.fire("devices.plc1", "connected") for _ in range(7)]
    monkeypatch.setattr(push, "BATCH_CHARS", len(dumps(events[0].marshal())) * 3 + 10)
    messages = session.take()
    assert [len(m.get("events", [m.get("event")])) for m in messages] == [3, 3, 1]
    assert messages[-1]["type"] == "event"
    assert event_ids(messages) == [e.id for e in events]


def test_replayed_history_comes_in_batches_then_live_without_gaps_or_duplicates(server: LinkServer) -> None:
    stored = [fire(server, durable=True) for _ in range(9)]
    session = session_for(server, replay_page=4)
    subscribe(session, resume_from=stored[1])
    during = fire(server, durable=True)  # in history and held live: sent once
    messages = drain(session)
    after = fire(server)
    messages += session.take()
    assert event_ids(messages) == [*stored[2:], during, after]
    assert any(m["type"] == "events" and len(m["events"]) > 1 for m in messages)


def test_a_resume_from_the_last_event_of_a_batch_misses_nothing_and_repeats_nothing(
    server: LinkServer,
) -> None:
    first = session_for(server)
    subscribe(first)
    ids = [fire(server, durable=True) for _ in range(8)]
    [batch] = first.take(3)  # the connection is lost after one batch
    first.close()
    assert [e["id"] for e in batch["events"]] == ids[:3]
    second = session_for(server, replay_page=2)
    subscribe(second, resume_from=batch["events"][-1]["id"])
    later = fire(server)
    assert event_ids(drain(second)) == [*ids[3:], later]


# -- encoding once ---------------------------------------------------------------------


def test_a_live_event_is_encoded_once_for_every_session(server: LinkServer) -> None:
    sessions = [session_for(server) for _ in range(5)]
    for session in sessions:
        subscribe(session, "devices.*")
    misses = push.ENCODED.misses
    event_id = fire(server)
    texts = [session.take_text() for session in sessions]
    assert push.ENCODED.misses == misses + 1
    assert all(json.loads(t[0])["event"]["id"] == event_id for t in texts)


def test_sessions_with_the_same_subscription_id_share_one_message_object(server: LinkServer) -> None:
    sessions = [session_for(server) for _ in range(3)]
    for session in sessions:
        subscribe(session, batch=False)
    fire(server)
    [a], [b], [c] = (session.take_text() for session in sessions)
    assert a is b is c  # so its frame is made once (linkserver/net/wire.py)
    assert type(a) is push.Wire and json.loads(a)["subscription"] == "s1"
    other = session_for(server)
    subscribe(other, "devices.plc2", batch=False)
    subscribe(other, batch=False)  # s2 here
    fire(server)
    [d] = other.take_text()
    assert (
        json.loads(d)["subscription"] == "s2"
        and json.loads(d)["event"] == json.loads(sessions[0].take_text()[0])["event"]
    )


def test_the_encoded_cache_counts_messages_in_its_bound(server: LinkServer) -> None:
    events = [server.fire("devices.plc1", "connected") for _ in range(3)]
    sids = [f"s{n}" for n in range(4)]
    alone = EncodedEvents()  # what the newest event with its four messages takes
    for sid in sids:
        alone.message(sid, events[-1])
    text = len(alone.text(events[-1]))
    cache = EncodedEvents(max_chars=alone._chars + text // 2)
    for event in events:
        cache.text(event)
    assert len(cache) == 3  # three texts fit
    for sid in sids:
        message = cache.message(sid, events[-1])
        assert message == push.event_text(sid, dumps(events[-1].marshal()))
    assert len(cache) == 1 and cache.misses == 3  # the messages pushed the older events out


def test_the_encoded_cache_serves_only_the_same_event_object(server: LinkServer) -> None:
    cache = EncodedEvents()
    event = server.fire("devices.plc1", "connected")
    assert json.loads(cache.text(event))["acknowledgements"] == []
    acknowledged = event.evolve(
        acknowledgements=(Acknowledgement(time=event.created, user="op", text="seen"),)
    )
    assert json.loads(cache.text(acknowledged))["acknowledgements"][0]["text"] == "seen"
    assert (cache.hits, cache.misses) == (0, 2)
    cache.text(acknowledged)
    assert cache.hits == 1


def test_the_encoded_cache_is_bounded(server: LinkServer) -> None:
    events = [server.fire("devices.plc1", "connected") for _ in range(10)]
    by_count = EncodedEvents(max_events=4)
    for event in events:
        by_count.text(event)
    assert len(by_count) == 4
    size = len(by_count.text(events[-1]))
    by_size = EncodedEvents(max_chars=size * 2)
    for event in events:
        by_size.text(event)
    assert len(by_size) == 2


# -- waking the senders ------------------------------------------------------------------


def test_a_sender_taking_in_chunks_sees_pending_until_drained_then_is_signalled_again(
    server: LinkServer,
) -> None:
    signals: list[int] = []
    session = Session(Gateway(server), OPERATOR, Limits(), on_output=lambda: signals.append(1))
    subscribe(session)
    ids = [fire(server) for _ in range(5)]
    assert len(signals) == 2  # the answer, then the first event: one signal per drain
    assert event_ids([json.loads(t) for t in session.take_text(2)]) == ids[:2]
    assert session.pending  # no new signal comes for what is left: take again
    assert event_ids([json.loads(t) for t in session.take_text(2)]) == ids[2:4]
    assert event_ids([json.loads(t) for t in session.take_text(2)]) == ids[4:]
    assert not session.pending and len(signals) == 2
    fire(server)
    assert len(signals) == 3


def test_many_wakes_from_threads_cost_one_loop_wakeup() -> None:
    async def scenario() -> None:
        waker = LoopWaker(asyncio.get_running_loop())
        events = [asyncio.Event() for _ in range(100)]
        firer = threading.Thread(target=lambda: [waker.wake(e) for e in events])
        firer.start()
        firer.join()
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 5)
        assert waker.wakeups == 1
        waker.wake(events[0])  # the next one schedules a wake-up again
        events[0].clear()
        await asyncio.wait_for(events[0].wait(), 5)
        assert waker.wakeups == 2

    asyncio.run(scenario())


def test_wakes_deferred_by_a_thread_are_made_when_it_leaves_in_one_loop_wakeup(server: LinkServer) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        waker = LoopWaker(loop)
        sessions = [session_for(server) for _ in range(5)]
        for session in sessions:
            subscribe(session)
        calls: list[int] = []
        targets = [asyncio.Event() for _ in sessions]
        for session, target in zip(sessions, targets, strict=True):
            session.on_output = lambda target=target: waker.wake(target)  # type: ignore[misc]
        original = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:
            calls.append(len(waker._pending))
            return original(*args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        seen: list[int] = []

        def firer() -> None:
            with push.deferred_wakes():
                fire(server)
                seen.append(len(calls))  # every session has the event; nothing woken yet
                with push.deferred_wakes():  # nested: one scope
                    fire(server, "plc2")
                seen.append(len(calls))

        thread = threading.Thread(target=firer)
        thread.start()
        thread.join()
        assert seen == [0, 0] and calls == [5]  # one loop wake-up for all five, at the end
        await asyncio.wait_for(asyncio.gather(*(t.wait() for t in targets)), 5)
        assert waker.wakeups == 1
        assert all(len(s.take()) == 1 for s in sessions)  # plc1's event, each in its session
        waker.wake(targets[0])  # outside a scope: at once
        assert len(calls) == 2

    asyncio.run(scenario())


def test_a_one_event_message_and_its_answer_share_one_loop_wakeup(server: LinkServer) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        waker = LoopWaker(loop)
        sessions = [session_for(server) for _ in range(3)]
        for session in sessions:
            subscribe(session)
        firer = session_for(server)
        for session in [*sessions, firer]:
            session.on_output = functools.partial(waker.wake, asyncio.Event())
        calls: list[int] = []
        original = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:
            calls.append(len(waker._pending))
            return original(*args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        event = {"context": "devices.plc1", "event": "connected"}
        answers: list[str] = []
        for message in (
            {"type": "fire_batch", "ref": 1, "events": [event]},
            {"type": "fire", "ref": 2, **event},
        ):
            thread = threading.Thread(target=firer.receive, args=(json.dumps(message),))
            thread.start()
            thread.join()
            await asyncio.sleep(0.01)  # the loop runs the wake-up
            assert [len(s.take()) for s in sessions] == [1, 1, 1]  # taken: the next one signals
            answers += [m["type"] for m in firer.take()]
        assert calls == [4, 4]  # three subscribers and the firer's answer, each time at once
        assert answers == ["fired_batch", "fired"]

    asyncio.run(scenario())


def test_one_loop_has_one_waker() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert push.waker_for(loop) is push.waker_for(loop)

    asyncio.run(scenario())
