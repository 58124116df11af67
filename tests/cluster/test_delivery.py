"""Three ``linkserver serve`` processes on one PostgreSQL and one RabbitMQ are one system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster_helpers import Node, wait_linked


def start_all(cluster: Callable[..., Node], *names: str) -> list[Node]:
    nodes = [cluster(name).launch() for name in names]
    for node in nodes:
        node.wait_serving()
    for firer in nodes:
        for receiver in nodes:
            if receiver is not firer:
                wait_linked(firer, receiver)
    return nodes


def readings(context: str, start: int, count: int, *, ticks: bool = False) -> list[dict[str, Any]]:
    items = []
    for seq in range(start, start + count):
        items.append({"context": context, "event": "reading", "data": {"seq": seq}})
        if ticks:
            items.append({"context": context, "event": "tick", "data": {"seq": seq}})
    return items


def test_an_event_fired_on_any_node_is_stored_once_and_delivered_once_everywhere_in_order(
    cluster: Callable[..., Node],
) -> None:
    a, b, c = start_all(cluster, "a", "b", "c")
    subscribers = {node.name: node.subscribe("plant.*") for node in (a, b, c)}
    fired_a = a.fire_batch(readings("plant.line1", 0, 150, ticks=True))
    fired_b = b.fire_batch(readings("plant.line2", 0, 150, ticks=True))
    fired_c = [c.fire("plant.line1", "reading", {"seq": 1000 + i}) for i in range(20)]
    every = set(fired_a) | set(fired_b) | set(fired_c)
    for name, sub in subscribers.items():
        got = sub.wait_for(lambda ids: every <= set(ids))
        assert every <= set(got), f"{name} misses {len(every - set(got))} events"
        mine = [i for i in got if i in every]
        assert len(mine) == len(set(mine)), f"{name} got duplicates"
        # in order per context: each node's events in its firing order
        for fired in (fired_a, fired_b, fired_c):
            assert [i for i in mine if i in set(fired)] == fired
    # stored once: the readings are in the shared history exactly once, the ticks not at all
    stored = a.history_ids("plant.*", "reading")
    persistent = {
        i
        for i, item in zip(fired_a, readings("plant.line1", 0, 150, ticks=True), strict=True)
        if item["event"] == "reading"
    }
    assert len(stored) == len(set(stored))
    assert persistent <= set(stored) and set(fired_c) <= set(stored)
    assert not set(stored) & {i for i in fired_a if i not in persistent}
    # a context added on one node and fired in at once: the others follow the tree, then deliver
    a.add_context("plant.line9")
    fresh = a.fire("plant.line9", "reading", {"seq": 1})
    for name in ("b", "c"):
        assert fresh in subscribers[name].wait_for(lambda ids: fresh in ids), f"{name} missed it"
    # the data table arrives as fired (types included)
    [event] = [e for e in subscribers["b"].events if int(e["id"]) == fired_c[3]]
    assert event["data"] == [{"seq": 1003, "at": None}] or event["data"] == {"seq": 1003, "at": None}


def test_a_subscriber_that_moves_to_another_node_resumes_from_history_without_gaps_or_duplicates(
    cluster: Callable[..., Node],
) -> None:
    a, b, c = start_all(cluster, "a", "b", "c")
    on_b = b.subscribe("plant.line1", "reading")
    first = a.fire_batch(readings("plant.line1", 0, 40))
    assert on_b.wait_for(lambda ids: len(ids) >= 40) == first
    last_seen = on_b.ids()[-1]
    on_b.close()  # the subscriber goes; meanwhile a fires on
    missed = a.fire_batch(readings("plant.line1", 40, 40))
    on_c = c.subscribe("plant.line1", "reading", resume_from=last_seen)
    later = a.fire_batch(readings("plant.line1", 80, 40))
    got = on_c.wait_for(lambda ids: len(ids) >= 80)
    assert got == missed + later  # history, then live from another node: in order, once each
