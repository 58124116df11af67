"""Resource states on several nodes sharing one PostgreSQL: a transition on one node is seen on
the others at once, and two nodes moving the same resource at the same moment cannot both win
(the state is a compare-and-set in the stateChanged event's commit).

In process (two LinkServer objects on one schema) and with two real ``linkserver serve``
processes over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from nodes_helpers import Node, eventually

from linkserver.core.statemachines import InvalidTransition
from linkserver.history.base import HistoryQuery
from linkserver.server.app import LinkServer

START_REFUSED = "is starting: action 'start' is not allowed from starting; allowed from starting: "


def state_changes(server: LinkServer, path: str) -> list[tuple[str, str]]:
    page = server.history.query(HistoryQuery(masks=(path,), names=("stateChanged",), newest_first=False))
    return [(e.record["old"], e.record["new"]) for e in page.events]


def test_a_transition_on_one_node_is_the_state_on_the_other_at_once(
    make_node: Callable[[int], LinkServer],
) -> None:
    a, b = make_node(1), make_node(2)
    a.engine.add_context("devices.pump1")
    eventually(lambda: b.tree.find("devices.pump1"), what="devices.pump1 on node 2")
    assert b.resources.state("devices.pump1") == "offline"

    a.resources.transition("devices.pump1", action="connect", by="plc")
    # Read through on demand: no feed interval to wait for, the commit is there.
    assert b.resources.state("devices.pump1") == "online"
    [(listed, described)] = b.resources.list("devices.*")
    assert (listed.path, described["state"]) == ("devices.pump1", "online")
    assert "degrade" in described["actions"]

    # Node 2 moves on from the state node 1 left, and node 1 sees that too.
    b.resources.transition("devices.pump1", action="degrade", by="plc")
    assert a.resources.state("devices.pump1") == "degraded"
    with pytest.raises(InvalidTransition) as refused:
        a.resources.transition("devices.pump1", action="degrade", by="plc")
    assert refused.value.state == "degraded"
    assert state_changes(a, "devices.pump1") == [("offline", "online"), ("online", "degraded")]


def test_two_nodes_racing_on_one_resource_give_one_success_and_one_clear_refusal(
    make_node: Callable[[int], LinkServer],
) -> None:
    """Both nodes read offline and request start at the same moment, many times over: each round
    exactly one wins; the other, whose compare-and-set finds starting, is decided again against
    starting and refused naming it and what it allows. History holds one stateChanged per round."""
    a, b = make_node(1), make_node(2)
    rounds = 15
    paths = [f"devices.race{i}" for i in range(rounds)]
    for path in paths:
        a.engine.add_context(path)
    eventually(lambda: all(b.tree.find(p) for p in paths), what="the race devices on node 2")
    barrier = threading.Barrier(2)

    def start(server: LinkServer, path: str) -> Any:
        barrier.wait(10)
        try:
            return server.resources.transition(path, action="start", by=f"node{server.node_id}")
        except InvalidTransition as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        for path in paths:
            outcomes = [f.result(30) for f in [pool.submit(start, a, path), pool.submit(start, b, path)]]
            refused = [o for o in outcomes if isinstance(o, InvalidTransition)]
            assert len(refused) == 1, (path, outcomes)
            assert START_REFUSED in str(refused[0]), str(refused[0])
            assert refused[0].state == "starting"
            assert "connect -> online" in refused[0].allowed
            assert a.resources.state(path) == b.resources.state(path) == "starting"
            assert state_changes(a, path) == [("offline", "starting")]
    # Nothing is left pending on either node: the loser's change was forgotten with its event.
    assert a.resources.writes._pending == {} and b.resources.writes._pending == {}


def test_two_serve_processes_race_over_http_and_read_each_others_states(
    start_nodes: Callable[..., list[Node]],
) -> None:
    a, b = start_nodes(2)
    token = a.login("operator")
    admin = a.login("admin")
    with a.http(admin) as http:
        assert http.post("/contexts", json={"path": "devices.vm_race"}).status_code in (200, 201)

    def visible(node: Node) -> bool:
        with node.http(token) as http:
            return http.get("/resources/devices.vm_race").status_code == 200

    eventually(lambda: visible(b), timeout=10, what="devices.vm_race on node 2")
    barrier = threading.Barrier(2)

    def start(node: Node) -> Any:
        with node.http(token) as http:
            barrier.wait(10)
            return http.post("/resources/devices.vm_race/transition", json={"action": "start"})

    with ThreadPoolExecutor(2) as pool:
        answers = [f.result(30) for f in [pool.submit(start, a), pool.submit(start, b)]]
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 409], [answer.text for answer in answers]
    won = next(answer for answer in answers if answer.status_code == 200).json()
    assert won["resource"]["state"] == "starting"
    refusal = next(answer for answer in answers if answer.status_code == 409).json()
    assert refusal["error"]["type"] == "InvalidTransition", refusal
    assert START_REFUSED in refusal["error"]["message"], refusal

    # Each node lists the state the other one set, without waiting for anything.
    for node in (a, b):
        with node.http(token) as http:
            [listed] = http.get("/resources", params={"mask": "devices.vm_race"}).json()["resources"]
        assert listed["state"] == "starting"
    with b.http(token) as http:
        answer = http.post("/resources/devices.vm_race/transition", json={"action": "connect"})
        assert answer.status_code == 200, answer.text
    with a.http(token) as http:
        assert http.get("/resources/devices.vm_race").json()["resource"]["state"] == "online"
        page = http.get("/history", params={"mask": "devices.vm_race", "event": "stateChanged"}).json()
    assert [(e["data"][0]["old"], e["data"][0]["new"]) for e in page["events"]] == [
        ("starting", "online"),
        ("offline", "starting"),
    ]


def test_a_node_that_decided_from_a_state_another_node_left_decides_again(
    make_node: Callable[[int], LinkServer],
) -> None:
    """Deterministic: node 2 reads offline, node 1's start commits before node 2 fires. Node 2's
    compare-and-set finds starting, its stateChanged is not stored, and it decides again: a
    request that still fits (connect, allowed from starting) is applied from starting."""
    a, b = make_node(1), make_node(2)
    a.engine.add_context("devices.pump2")
    eventually(lambda: b.tree.find("devices.pump2"), what="devices.pump2 on node 2")
    read = b.resources.store.get
    overtaken: list[str] = []

    def stale_read(path: str) -> Any:
        row = read(path)
        if not overtaken:  # the other node moves the resource right after this node read it
            overtaken.append(a.resources.transition(path, action="start", by="plc").record["new"])
        return row

    b.resources.store.get = stale_read  # type: ignore[method-assign]
    event = b.resources.transition("devices.pump2", action="connect", by="operator")
    assert overtaken == ["starting"]
    assert (event.record["old"], event.record["new"]) == ("starting", "online")
    assert a.resources.state("devices.pump2") == "online"
    assert state_changes(a, "devices.pump2") == [("offline", "starting"), ("starting", "online")]
