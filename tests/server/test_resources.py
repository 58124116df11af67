"""Resources with state machines in a running server: transitions requested and triggered, refused
ones changing nothing, and the state surviving a restart (SQLite file and PostgreSQL)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from node_processes import migrated_schema

from linkserver import CapturingListener, LinkServer
from linkserver.core.errors import PermissionDenied
from linkserver.core.events import Event
from linkserver.core.permissions import Grants, Principal
from linkserver.core.statemachines import InvalidTransition, NotAResource
from linkserver.history.base import HistoryQuery
from linkserver.loading import ServerConfig, load_all

POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A schema of the test's own, at head and empty (tests/node_processes.py)."""
    with migrated_schema("lstest") as url:
        yield url


def server(tmp_path: Path, url: str | None = None) -> LinkServer:
    _, catalog = load_all()
    changes = {"database_url": url} if url else {}
    return LinkServer(ServerConfig.default(data_dir=tmp_path, **changes), catalog)


def test_a_requested_transition_fires_state_changed_with_old_new_cause_and_who(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        changes = CapturingListener()
        s.listen("vms.*", "stateChanged", changes)
        alice = Principal(name="alice", grants=Grants({"vms.**": "operator"}))
        assert s.resources.state("vms.vm1") == "Stopped"
        event = s.resources.transition("vms.vm1", action="start", by=alice)
        assert event.record == {"old": "Stopped", "new": "Starting", "cause": "action start", "by": "alice"}
        assert event.author == "alice" and event.category == "ResourceStateEvent"
        assert changes.events == [event]
        assert s.resources.state("vms.vm1") == "Starting"


def test_an_invalid_transition_is_refused_naming_the_state_and_changes_nothing(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        with pytest.raises(InvalidTransition) as caught:
            s.resources.transition("vms.vm1", action="stop", by="ctl")
        assert str(caught.value) == (
            "vms.vm1 is Stopped: action 'stop' is not allowed from Stopped; "
            "allowed from Stopped: start -> Starting; destroy -> Destroyed"
        )
        nobody = Principal(name="bob", grants=Grants({"vms.**": "observer"}))
        with pytest.raises(
            PermissionDenied, match="bob may not change the state of vms.vm1: it needs operator"
        ):
            s.resources.transition("vms.vm1", action="start", by=nobody)
        with pytest.raises(NotAResource, match="users has no state machine"):
            s.resources.transition("users", action="start")
        s.history.flush(5)
        assert s.history.count(HistoryQuery(names=("stateChanged",))) == 0
        assert s.resources.state("vms.vm1") == "Stopped"


def test_a_device_moves_through_its_lifecycle_and_plain_events_change_nothing(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("devices.d1")
        s.fire("devices.d1", "connected", {"address": None})  # an event only: the machine has no trigger
        assert s.resources.state("devices.d1") == "offline"
        for action in ("connect", "degrade", "fail", "maintain", "resume"):
            s.resources.transition("devices.d1", action=action, by="ctl")
        s.history.flush(5)
        page = s.history.query(HistoryQuery(names=("stateChanged",), newest_first=False))
        assert [(e.record["old"], e.record["new"]) for e in page.events] == [
            ("offline", "online"),
            ("online", "degraded"),
            ("degraded", "failed"),
            ("failed", "maintenance"),
            ("maintenance", "online"),
        ]


def test_an_event_triggers_a_transition_when_its_guard_matches(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", action="start", by="ctl")
        job = {"job_id": "j1", "job_type": "VM.STOP", "resource": "vms.vm1"}
        s.fire("vms.vm1", "jobCompleted", job)  # another job type: no transition
        assert s.resources.state("vms.vm1") == "Starting"
        s.fire("vms.vm1", "jobCompleted", {**job, "job_type": "VM.START"})
        assert s.resources.state("vms.vm1") == "Running"


def urls() -> list[object]:
    return [
        pytest.param(None, id="sqlite"),
        pytest.param(
            POSTGRES_URL,
            id="postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="LINKSERVER_TEST_POSTGRES_URL is not set"),
        ),
    ]


@pytest.mark.parametrize("url", urls())
def test_the_state_survives_a_restart_and_a_removed_context_starts_over(
    tmp_path: Path, url: str | None, request: pytest.FixtureRequest
) -> None:
    if url is not None:
        url = request.getfixturevalue("postgres_url")
    with server(tmp_path, url) as s:
        s.engine.add_context("vms.vm1")
        s.engine.add_context("vms.vm2")
        s.resources.transition("vms.vm1", action="start", by="ctl")
        s.resources.transition("vms.vm2", to="Destroyed", by="ctl")
    with server(tmp_path, url) as s:
        assert s.resources.state("vms.vm1") == "Starting"
        assert s.resources.state("vms.vm2") == "Destroyed"
        s.engine.remove_context("vms.vm2")
        s.engine.add_context("vms.vm2")
        assert s.resources.state("vms.vm2") == "Stopped"
    with server(tmp_path, url) as s:
        assert [(c.path, d["state"]) for c, d in s.resources.list("vms.*")] == [
            ("vms.vm1", "Starting"),
            ("vms.vm2", "Stopped"),
        ]


def test_a_transition_under_way_holds_up_only_its_own_resource(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        first = "vms.vm1"
        # A resource that shared a lock with vm1 when locks were striped by hash (64 stripes):
        other = next(f"vms.vm{i}" for i in range(2, 10_000) if hash(f"vms.vm{i}") % 64 == hash(first) % 64)
        for path in (first, other):
            s.engine.add_context(path)
        inside, let_go = threading.Event(), threading.Event()

        def slow_listener(event: Event) -> None:  # delivered inside vm1's transition
            inside.set()
            let_go.wait(10)

        s.listen(first, "stateChanged", slow_listener)
        under_way = threading.Thread(target=lambda: s.resources.transition(first, action="start", by="ctl"))
        under_way.start()
        assert inside.wait(10)
        done = threading.Thread(target=lambda: s.resources.transition(other, action="start", by="ctl"))
        done.start()
        done.join(5)
        alive = done.is_alive()
        let_go.set()
        under_way.join(10)
        done.join(10)
        assert not alive, f"{other} waited for {first}'s transition"
        assert s.resources.state(first) == s.resources.state(other) == "Starting"


def test_a_durable_transition_that_times_out_says_how_long_it_waited_in_all(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.engine.add_context("vms.vm2")
        writer = s.history._writer  # type: ignore[attr-defined]
        with s.history.write_lock:  # the history cannot commit
            s.resources.transition("vms.vm2", action="start", by="ctl")  # stored, not waited for
            for _ in range(1000):  # until the writer thread has taken it and waits for the lock
                if writer._committer is not None:
                    break
                time.sleep(0.01)
            with pytest.raises(TimeoutError) as raised:
                s.resources.transition("vms.vm1", action="start", by="ctl", durable=True, timeout=0.5)
        assert str(raised.value) == "history did not confirm the transition of vms.vm1 within 0.5 s"


def _taker(locks: Any, path: str, took: list[object]) -> threading.Thread:
    """A thread that takes ``path``'s lock, notes which one it got, and gives it back."""

    def take() -> None:
        lock = locks.acquire(path)
        took.append(lock)
        lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    return thread


def test_a_removed_resource_s_lock_is_dropped_but_never_while_held() -> None:
    """A path's lock is kept from its first transition until its context is removed; one held then
    (by the removing thread itself too: re-entrant) is dropped by a later removal."""
    from linkserver.server.resources import _PathLocks

    locks = _PathLocks()
    held = locks.acquire("vms.vm1")
    locks.forget(lambda path: path == "vms.vm1")  # this thread holds it: kept
    other = threading.Thread(target=lambda: locks.forget(lambda path: False))  # left, still held: kept
    other.start()
    other.join(5)
    assert len(locks) == 1
    took: list[object] = []
    waiter = _taker(locks, "vms.vm1", took)
    time.sleep(0.05)
    assert not took  # it waits for the holder
    held.release()
    waiter.join(5)
    assert took == [held]
    locks.forget(lambda path: False)  # left from the removal, nobody holds it now: dropped
    assert len(locks) == 0
    again = locks.acquire("vms.vm1")
    assert again is not held
    again.release()


def test_a_thread_that_waited_for_a_dropped_lock_takes_the_path_s_lock_of_now() -> None:
    """A transition that waited across its resource's removal (its lock dropped) and a transition
    of the context added again never run at the same time."""
    from linkserver.server.resources import _PathLocks

    locks = _PathLocks()
    old = locks.acquire("vms.vm1")
    took: list[object] = []
    waiter = _taker(locks, "vms.vm1", took)
    time.sleep(0.05)
    del locks._locks["vms.vm1"]  # what forget does, holding it
    newer = locks.acquire("vms.vm1")  # the path's lock now
    assert newer is not old
    old.release()
    time.sleep(0.05)
    assert not took  # it got the dropped lock, saw it dropped, and waits for the path's lock now
    newer.release()
    waiter.join(5)
    assert took == [newer]


def test_removing_a_resource_drops_its_lock(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        for path in ("vms.vm1", "vms.vm2"):
            s.engine.add_context(path)
            s.resources.transition(path, action="start", by="ctl")
        assert len(s.resources._locks) == 2
        s.history.flush(5)
        s.engine.remove_context("vms.vm1")
        assert len(s.resources._locks) == 1
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", to="Destroyed", by="ctl")  # starts over from Stopped
        assert s.resources.state("vms.vm1") == "Destroyed"


class _HoldAfterCommit:
    """A same-commit hook that holds the writer after committing a batch with an event of
    ``context`` (outside the write lock: removing a context takes that lock)."""

    def __init__(self, context: str) -> None:
        self.context = context
        self.holding, self.let_go = threading.Event(), threading.Event()

    def statements(self, dialect: str, events: Any) -> list[Any]:
        return []

    def committed(self, events: Any) -> None:
        if not self.let_go.is_set() and any(event.context == self.context for event in events):
            self.holding.set()
            self.let_go.wait(10)


def test_a_change_still_queued_when_its_context_is_removed_is_not_the_new_context_s_state(
    tmp_path: Path,
) -> None:
    """A context removed while its transition's stateChanged waits for the writer, then added
    again: the new context starts over, and the old change's commit writes no state for it."""
    with server(tmp_path) as s:
        for path in ("vms.vm0", "vms.vm1"):
            s.engine.add_context(path)
        hold = _HoldAfterCommit("vms.vm0")
        s.history.add_same_commit(hold)
        s.resources.transition("vms.vm0", action="start", by="ctl")
        assert hold.holding.wait(10)  # the writer is held: vm1's change waits in its queue
        s.resources.transition("vms.vm1", action="start", by="ctl")
        assert s.resources.state("vms.vm1") == "Starting"
        s.engine.remove_context("vms.vm1")
        s.engine.add_context("vms.vm1")
        assert s.resources.state("vms.vm1") == "Stopped"
        hold.let_go.set()
        s.history.flush(5)
        changed = s.history.query(HistoryQuery(masks=("vms.vm1",), names=("stateChanged",)))
        assert [e.record["new"] for e in changed.events] == ["Starting"]  # the event is stored
        assert s.resources.state("vms.vm1") == "Stopped"
        assert s.resources.store.get("vms.vm1") is None  # and no row: the new one starts over
        s.resources.transition("vms.vm1", to="Destroyed", by="ctl")  # from Stopped: allowed
        s.history.flush(5)
        assert s.resources.state("vms.vm1") == "Destroyed"
    with server(tmp_path) as s:
        assert s.resources.state("vms.vm1") == "Destroyed"
        assert s.resources.state("vms.vm0") == "Starting"
