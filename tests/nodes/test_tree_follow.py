"""One tree on several nodes: contexts added or removed on one appear on the others, in process.

Two LinkServer objects on one PostgreSQL schema are two nodes (their own engines, trees and
subscriptions); the real processes are in test_nodes_processes.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from nodes_helpers import eventually

from linkserver.core.errors import ContextNotFound
from linkserver.history.base import HistoryQuery
from linkserver.net.codec import FireRequest
from linkserver.net.gateway import Gateway
from linkserver.server.app import LinkServer
from linkserver.testing import CapturingListener


def test_a_context_added_on_one_node_is_subscribed_and_fired_in_on_the_other(
    make_node: Callable[[int], LinkServer],
) -> None:
    a, b = make_node(1), make_node(2)
    on_a, on_b = CapturingListener(), CapturingListener()
    a.listen("devices", "childAdded", on_a)
    b.listen("devices", "childAdded", on_b)
    measured = CapturingListener()
    b.listen("devices.*", "connected", measured)  # a mask: it must cover contexts added later

    a.engine.add_context("devices.pump7")
    eventually(lambda: b.tree.find("devices.pump7"), what="devices.pump7 on node 2")
    b.fire("devices.pump7", "connected", {"address": "10.0.0.7"}, author="plc")
    assert [e.context for e in measured.events] == ["devices.pump7"]
    # childAdded is fired once, where the context was added; node 2 only follows the change
    # (a listener there gets node 1's event through the cluster's bus, never one of its own).
    assert [e.record["path"] for e in on_a.events] == ["devices.pump7"]
    assert on_b.events == []
    assert b.tree_follower is not None and b.tree_follower.applied == 1
    assert a.tree_follower is not None and a.tree_follower.applied == 0  # its own change is skipped

    b.engine.remove_context("devices.pump7")
    eventually(lambda: a.tree.find("devices.pump7") is None, what="devices.pump7 gone from node 1")
    with pytest.raises(ContextNotFound):
        a.fire("devices.pump7", "connected", {}, author="plc")
    # The event fired while it lived stays readable on both nodes (one history).
    [stored] = a.history.query(HistoryQuery(masks=("devices.pump7",), names=("connected",))).events
    assert stored.record["address"] == "10.0.0.7"


def test_catch_up_applies_a_change_at_once(make_node: Callable[[int], LinkServer]) -> None:
    a, b = make_node(1), make_node(2)
    assert b.tree_follower is not None
    b.tree_follower.stop()  # no thread: only catch_up() follows now
    a.engine.add_context("devices.valve1")
    a.engine.add_context("devices.valve2")
    a.engine.remove_context("devices.valve1")
    assert b.tree.find("devices.valve2") is None
    restored = b.tree_follower.catch_up()
    assert restored is not None and restored.added == ("devices.valve2",)
    assert b.tree.find("devices.valve2") is not None and b.tree.find("devices.valve1") is None
    assert b.tree_follower.catch_up() is None  # nothing new


def test_a_context_added_on_one_node_is_found_on_another_as_soon_as_the_add_returned(
    make_node: Callable[[int], LinkServer],
) -> None:
    a, b = make_node(1), make_node(2)
    assert b.tree_follower is not None
    b.tree_follower.stop()  # its quarter-second reads cannot be what finds it
    a.engine.add_context("devices.valve3")
    assert b.tree.find("devices.valve3") is None  # not followed yet
    # Every API request naming a context (fire, GET /contexts/...) finds it through find_context.
    fired = Gateway(b).fire(b.user("admin"), FireRequest(context="devices.valve3", event="connected"))
    assert fired.context == "devices.valve3"
    a.engine.add_context("devices.valve5")
    found = b.find_context("devices.valve5")
    assert found is not None and found is b.tree.find("devices.valve5")
    assert b.find_context("devices.nowhere") is None


def test_a_node_started_later_builds_the_same_tree(make_node: Callable[[int], LinkServer]) -> None:
    a = make_node(1)
    a.engine.add_context("devices.early")
    a.engine.add_context("devices.gone")
    a.engine.remove_context("devices.gone")
    b = make_node(2)
    assert b.tree.find("devices.early") is not None and b.tree.find("devices.gone") is None
    assert sorted(b.tree.paths()) == sorted(a.tree.paths())


def test_a_device_owned_through_one_node_cannot_be_adopted_through_another(
    make_node: Callable[[int], LinkServer],
) -> None:
    from linkserver.core.errors import DeviceOwned
    from linkserver.server.controllers import Owner, add_owned_device, remove_owned

    a, b = make_node(1), make_node(2)
    remote = Owner("gateway7", "operator")  # a remote controller, connected as operator
    assert add_owned_device(a.engine, a.device_owners, remote, "devices.plc7") is False
    eventually(lambda: b.tree.find("devices.plc7"), what="devices.plc7 on node 2")
    for other in (Owner("gateway8", "operator"), Owner("gateway7")):
        with pytest.raises(DeviceOwned, match="gateway7.*on node 1"):
            add_owned_device(b.engine, b.device_owners, other, "devices.plc7")
    with pytest.raises(DeviceOwned, match="gateway7"):
        remove_owned(b.engine, b.device_owners, "devices", None)
    # The same remote controller reconnecting through node 2 keeps its device.
    assert add_owned_device(b.engine, b.device_owners, remote, "devices.plc7") is True
    assert a.device_owners.owner_of("devices.plc7") == remote
    # In-process controllers of the same name on two nodes are two owners.
    handle_a = a.add_controller("sim", _Idle())
    handle_a.add_device("pump1")
    eventually(lambda: b.tree.find("devices.pump1"), what="devices.pump1 on node 2")
    handle_b = b.add_controller("sim", _Idle())
    with pytest.raises(DeviceOwned, match="sim"):
        handle_b.add_device("pump1")
    handle_a.remove_device("pump1")  # released: now node 2's may have it
    eventually(lambda: b.tree.find("devices.pump1") is None, what="devices.pump1 gone on node 2")
    handle_b.add_device("pump1")
    eventually(lambda: a.device_owners.owner_of("devices.pump1") == Owner("sim"), what="node 2's owner on 1")
    with pytest.raises(DeviceOwned, match="on node 2"):
        handle_a.add_device("pump1")


class _Idle:
    def start(self, handle: object) -> None:
        pass

    def stop(self) -> None:
        pass


def test_misses_arriving_together_share_a_read_and_never_one_begun_before_them(
    make_node: Callable[[int], LinkServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_node(1), make_node(2)
    follower = b.tree_follower
    assert follower is not None
    follower.stop()
    reads: list[int] = []
    first_read_begun, let_first_read_end = threading.Event(), threading.Event()
    load = follower.store.load_contexts

    def slow_load(after: int) -> Any:
        reads.append(after)
        rows = load(after)
        if len(reads) == 1:
            first_read_begun.set()
            let_first_read_end.wait(10)
        return rows

    monkeypatch.setattr(follower.store, "load_contexts", slow_load)
    early = threading.Thread(target=b.find_context, args=("devices.nowhere",))
    early.start()
    assert first_read_begun.wait(10)
    a.engine.add_context("devices.valve9")  # returned after the first read began
    found: list[object] = []
    callers = [
        threading.Thread(target=lambda: found.append(b.find_context("devices.valve9"))) for _ in range(20)
    ]
    for caller in callers:
        caller.start()
    time.sleep(0.2)  # let them all queue behind the first read
    let_first_read_end.set()
    for thread in (early, *callers):
        thread.join(10)
    assert len(found) == 20 and all(context is b.tree.find("devices.valve9") is not None for context in found)
    # The first (begun before them) and one they share (a late starter may need a third).
    assert 2 <= len(reads) <= 3, reads
