"""The resource state store, on every backend: a state is committed with the stateChanged event
that reports it (same transaction), read back whole, and forgotten with its context."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from history_helpers import SQL_BACKENDS, EventMaker

from linkserver.core.errors import HistoryError
from linkserver.history.base import HistoryStore
from linkserver.history.resource_states import (
    ExpectedChange,
    StaleResourceState,
    StateWrites,
    open_resource_states,
)


def change(path: str, old: str, new: str) -> ExpectedChange:
    return ExpectedChange(
        path=path,
        machine="vm",
        old=old,
        new=new,
        actor="alice",
        cause="action start",
        from_initial=old == "Stopped",
    )


def test_a_state_is_stored_with_its_event_and_only_with_it(store: HistoryStore) -> None:
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    writes.expect(change("vms.vm1", "Stopped", "Starting"))
    writes.expect(change("vms.vm1", "Starting", "Running"))
    writes.expect(change("vms.vm2", "Stopped", "Starting"))
    first = make("vms.vm1", "stateChanged", data=({"old": "Stopped", "new": "Starting"},))
    second = make("vms.vm1", "stateChanged", data=({"old": "Starting", "new": "Running"},))
    other = make("vms.vm3", "stateChanged", data=({"old": "Stopped", "new": "Starting"},))  # not expected
    for event in (first, second, other):
        store.append(event)
    store.flush(5)
    stored = states.all()
    assert sorted(stored) == ["vms.vm1"]
    assert attrs.asdict(stored["vms.vm1"]) == {
        "path": "vms.vm1",
        "machine": "vm",
        "state": "Running",
        "changed": second.created,
        "event_id": second.id,
        "actor": "alice",
        "cause": "action start",
    }
    assert states.get("vms.vm2") is None  # its event was never fired
    writes.dropped(change("vms.vm2", "Stopped", "Starting"))
    assert writes._pending == {}


def test_forget_deletes_a_context_and_everything_below_it(store: HistoryStore) -> None:
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    for path in ("vms.a", "vms.a.disk", "vms.ab", "vms.b"):
        writes.expect(change(path, "Stopped", "Starting"))
        store.append(make(path, "stateChanged", data=({"old": "Stopped", "new": "Starting"},)))
    store.flush(5)
    states.forget(["vms.a"])
    assert sorted(states.all()) == ["vms.ab", "vms.b"]
    states.forget([""])  # the root: everything
    assert states.all() == {}


def test_many_changes_of_one_resource_in_one_batch_store_where_it_ended(store: HistoryStore) -> None:
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    steps = [
        ("Stopped", "Starting"),
        ("Starting", "Running"),
        ("Running", "Stopping"),
        ("Stopping", "Stopped"),
    ]
    events = []
    for index in range(1002):
        old, new = steps[index % 4]
        writes.expect(change("vms.vm1", old, new))
        events.append(make("vms.vm1", "stateChanged", data=({"old": old, "new": new},)))
    for event in events:
        store.append(event)
    store.flush(5)
    stored = states.get("vms.vm1")
    assert stored is not None and (stored.state, stored.event_id) == ("Running", events[-1].id)
    assert writes._pending == {}  # every change found its event


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_a_change_from_a_state_the_resource_left_is_refused_with_its_event(
    kind: str, make_store: Any
) -> None:
    """Two writers decide a transition from the same stored state: the first commit wins; the
    second's compare-and-set finds the new state, so its event is not stored and its future
    fails with StaleResourceState as the cause; its change is no longer pending."""
    store = make_store(kind)
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    writes.expect(change("vms.vm1", "Stopped", "Starting"))
    won = make("vms.vm1", "stateChanged", data=({"old": "Stopped", "new": "Starting"},))
    store.append(won).result(5)
    # Decided from Stopped too (it read the state before the first commit), as a node would.
    lost_change = change("vms.vm1", "Stopped", "Destroyed")
    writes.expect(lost_change)
    lost = make("vms.vm1", "stateChanged", data=({"old": "Stopped", "new": "Destroyed"},))
    other = make("vms.vm2", "stateChanged", data=({"old": "Stopped", "new": "Starting"},))
    writes.expect(change("vms.vm2", "Stopped", "Starting"))
    futures = [store.append(lost), store.append(other)]  # one batch: the good one is kept
    with pytest.raises(HistoryError) as raised:
        futures[0].result(5)
    assert isinstance(raised.value.__cause__, StaleResourceState)
    assert "vms.vm1 is no longer Stopped: another node changed its state" in str(raised.value)
    assert futures[1].result(5) is other
    assert {path: row.state for path, row in states.all().items()} == {
        "vms.vm1": "Starting",
        "vms.vm2": "Starting",
    }
    assert writes.latest("vms.vm1") is None and writes._pending == {}
    from linkserver.history.base import HistoryQuery

    stored = store.query(HistoryQuery(names=("stateChanged",), newest_first=False)).events
    assert [e.id for e in stored] == [won.id, other.id]


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_a_change_from_a_state_other_than_the_initial_needs_a_row_in_it(kind: str, make_store: Any) -> None:
    """No row means the initial state: a change from any other state finds nothing to set."""
    store = make_store(kind)
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    writes.expect(change("vms.vm1", "Running", "Stopping"))
    with pytest.raises(HistoryError) as raised:
        store.append(make("vms.vm1", "stateChanged", data=({"old": "Running", "new": "Stopping"},))).result(5)
    assert isinstance(raised.value.__cause__, StaleResourceState)
    assert states.all() == {} and writes._pending == {}


def test_a_change_committed_out_of_its_turn_leaves_the_others_waiting(store: HistoryStore) -> None:
    """The oldest waiting changes are usually the ones committed (dropped as a prefix); an event
    that matches a later change (a plain fire of the same change) takes only that one."""
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    first, second, third = (
        change("vms.vm1", "Stopped", "Starting"),
        change("vms.vm1", "Stopped", "Destroyed"),
        change("vms.vm1", "Starting", "Running"),
    )
    for expected in (first, second, third):
        writes.expect(expected)
    store.append(make("vms.vm1", "stateChanged", data=({"old": "Stopped", "new": "Destroyed"},))).result(5)
    assert writes._pending == {"vms.vm1": [first, third]}
    assert writes.latest("vms.vm1") is third
    stored = states.get("vms.vm1")
    assert stored is not None and stored.state == "Destroyed"
    writes.dropped(third)
    assert writes.latest("vms.vm1") is first
    writes.dropped(first)
    assert writes.latest("vms.vm1") is None and writes._pending == {}


def test_an_event_matching_a_change_far_behind_the_oldest_still_finds_it(store: HistoryStore) -> None:
    """A batch looks at a resource's oldest waiting changes first, and at all of them when an
    event matches none of those."""
    states = open_resource_states(store)
    writes = StateWrites(states)
    store.add_same_commit(writes)
    make = EventMaker()
    waiting = [change("vms.vm1", "Stopped", f"S{index}") for index in range(30)]
    for expected in waiting:
        writes.expect(expected)
    store.append(make("vms.vm1", "stateChanged", data=({"old": "Stopped", "new": "S25"},))).result(5)
    stored = states.get("vms.vm1")
    assert stored is not None and stored.state == "S25"
    assert writes._pending == {"vms.vm1": waiting[:25] + waiting[26:]}
