"""The resource state store, on every backend: a state is committed with the stateChanged event
that reports it (same transaction), read back whole, and forgotten with its context."""

from __future__ import annotations

import attrs
from history_helpers import EventMaker

from linkserver.history.base import HistoryStore
from linkserver.history.resource_states import ExpectedChange, StateWrites, open_resource_states


def change(path: str, old: str, new: str) -> ExpectedChange:
    return ExpectedChange(path=path, machine="vm", old=old, new=new, actor="alice", cause="action start")


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
        ("Running", "Stopping"),
        ("Stopping", "Stopped"),
        ("Stopped", "Starting"),
        ("Starting", "Running"),
    ]
    events = []
    for index in range(1000):
        old, new = steps[index % 4]
        writes.expect(change("vms.vm1", old, new))
        events.append(make("vms.vm1", "stateChanged", data=({"old": old, "new": new},)))
    for event in events:
        store.append(event)
    store.flush(5)
    stored = states.get("vms.vm1")
    assert stored is not None and (stored.state, stored.event_id) == ("Running", events[-1].id)
    assert writes._pending == {}  # every change found its event
