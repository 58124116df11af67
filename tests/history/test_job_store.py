"""The job store, on every backend: job events fold into one row per job in their own commit,
whoever fired them; an event that does not fit changes no row; a step the tracker decided that
no longer fits its row is refused with its event; a job is marked hanging once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from history_helpers import BACKENDS, SQL_BACKENDS, EventMaker

from linkserver.core.errors import HistoryError
from linkserver.core.jobs import JobStatus
from linkserver.history.base import HistoryQuery
from linkserver.history.jobs import JobWrites, Limits, StaleJob, open_job_store

LIMITS = Limits(timedelta(seconds=60), timedelta(seconds=600))


def job_event(make: EventMaker, name: str, job_id: str = "j1", **data: Any) -> Any:
    record = {"job_id": job_id, "job_type": "VM.START", "resource": "vms.vm1", "user": "alice", **data}
    return make("vms.vm1", name, data=(record,))


@pytest.mark.parametrize("kind", BACKENDS)
def test_job_events_fold_into_the_job_in_their_commit(kind: str, make_store: Any) -> None:
    store = make_store(kind)
    jobs = open_job_store(store)
    store.add_same_commit(JobWrites(jobs, LIMITS))
    make = EventMaker()
    scheduled = job_event(make, "jobScheduled", asynchronous=True, message="queued")
    started = job_event(make, "jobStarted")
    progress = job_event(make, "jobProgress", progress=40, message="booting")
    early = job_event(make, "jobScheduled", job_id="j1")  # an id used again: stored, changes nothing
    done = job_event(make, "jobCompleted", progress=100, result="ok")
    late = job_event(make, "jobFailed", result="too late")  # after its end: changes nothing
    ghost = job_event(make, "jobCompleted", job_id="ghost")  # unknown: no row made up
    for event in (scheduled, started, progress, early, done, late, ghost):
        store.append(event)
    store.flush(5)
    job = jobs.get("j1")
    assert job is not None
    assert (job.status, job.type, job.resource, job.user) == (
        JobStatus.COMPLETED,
        "VM.START",
        "vms.vm1",
        "alice",
    )
    assert (job.scheduled, job.started, job.finished) == (scheduled.created, started.created, done.created)
    assert (job.progress, job.message, job.result) == (100, "booting", "ok")
    assert (job.start_within, job.timeout) == (LIMITS.start_within, LIMITS.timeout)
    assert jobs.get("ghost") is None
    assert [j.id for j in jobs.list()] == ["j1"] and jobs.list(status="started") == []
    assert jobs.unfinished() == []
    stored = store.query(HistoryQuery(newest_first=False)).events
    assert len(stored) == 7  # every event is kept as fired


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_synchronous_job_begins_started_and_hanging_is_marked_once(kind: str, make_store: Any) -> None:
    store = make_store(kind)
    jobs = open_job_store(store)
    store.add_same_commit(JobWrites(jobs, LIMITS))
    make = EventMaker()
    store.append(job_event(make, "jobStarted", job_id="s1", asynchronous=False))
    store.append(job_event(make, "jobHanging", job_id="s1", message="not finished within 600 s"))
    store.append(job_event(make, "jobHanging", job_id="s1", message="again"))
    store.flush(5)
    job = jobs.get("s1")
    assert job is not None and job.status is JobStatus.STARTED and not job.asynchronous
    assert job.hanging == "not finished within 600 s"
    assert jobs.unfinished() == []  # reported already: the check leaves it alone


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_job_is_marked_hanging_without_an_event_once(kind: str, make_store: Any) -> None:
    store = make_store(kind)
    jobs = open_job_store(store)
    store.add_same_commit(JobWrites(jobs, LIMITS))
    store.append(job_event(EventMaker(), "jobScheduled", job_id="h1"))
    store.flush(5)
    assert [job.id for job in jobs.unfinished()] == ["h1"]
    assert jobs.mark_hanging("h1", "not started within 60 s of being scheduled")
    assert not jobs.mark_hanging("h1", "again") and not jobs.mark_hanging("nosuch", "x")
    job = jobs.get("h1")
    assert job is not None and job.hanging == "not started within 60 s of being scheduled"
    assert jobs.unfinished() == []


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_jobs_first_event_keeps_its_progress_message_and_result(kind: str, make_store: Any) -> None:
    store = make_store(kind)
    jobs = open_job_store(store)
    store.add_same_commit(JobWrites(jobs, LIMITS))
    started = job_event(EventMaker(), "jobStarted", job_id="p1", progress=10, message="copying", result="x")
    store.append(started)
    store.flush(5)
    job = jobs.get("p1")
    assert job is not None and (job.progress, job.message, job.result) == (10, "copying", "x")


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_a_decided_step_its_job_no_longer_fits_is_refused_with_its_event(kind: str, make_store: Any) -> None:
    """Another node completed the job after this one read it started: this node's jobFailed
    (expected: it must change the row) finds no started job; its event is not stored."""
    store = make_store(kind)
    jobs = open_job_store(store)
    writes = JobWrites(jobs, LIMITS)
    store.add_same_commit(writes)
    make = EventMaker()
    store.append(job_event(make, "jobStarted"))
    store.append(job_event(make, "jobCompleted", result="ok"))  # the other node's
    store.flush(5)
    writes.expect("j1", "jobFailed", LIMITS)
    with pytest.raises(HistoryError) as raised:
        store.append(job_event(make, "jobFailed", result="boom")).result(5)
    assert isinstance(raised.value.__cause__, StaleJob)
    assert "job j1: jobFailed no longer fits it, another node changed the job meanwhile" in str(raised.value)
    job = jobs.get("j1")
    assert job is not None and (job.status, job.result) == (JobStatus.COMPLETED, "ok")
    assert writes._expected == {}
    writes.expect("j1", "jobScheduled", LIMITS)  # an id in use, scheduled by another node first
    with pytest.raises(HistoryError) as raised:
        store.append(job_event(make, "jobScheduled")).result(5)
    assert isinstance(raised.value.__cause__, StaleJob)


@pytest.mark.parametrize("kind", BACKENDS)
def test_trim_keeps_the_newest_ended_jobs_and_every_running_one(kind: str, make_store: Any) -> None:
    store = make_store(kind)
    jobs = open_job_store(store)
    store.add_same_commit(JobWrites(jobs, LIMITS))
    make = EventMaker()
    for index in range(5):
        store.append(job_event(make, "jobStarted", job_id=f"t{index}"))
        if index < 4:
            store.append(job_event(make, "jobCompleted", job_id=f"t{index}"))
    store.flush(5)
    assert jobs.trim(2) == 2
    assert sorted(j.id for j in jobs.list()) == ["t2", "t3", "t4"]


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_a_job_begun_as_new_is_refused_when_its_id_was_scheduled_meanwhile(
    kind: str, make_store: Any
) -> None:
    """A synchronous job's jobStarted from the tracker must create its row: the plain upsert
    would start (take over) another node's job scheduled under the same id."""
    store = make_store(kind)
    jobs = open_job_store(store)
    writes = JobWrites(jobs, LIMITS)
    store.add_same_commit(writes)
    make = EventMaker()
    store.append(job_event(make, "jobScheduled", job_id="n1", user="bob")).result(5)  # the other node's
    writes.expect("n1", "jobStarted", Limits(LIMITS.start_within, LIMITS.timeout, new=True))
    with pytest.raises(HistoryError) as raised:
        store.append(job_event(make, "jobStarted", job_id="n1", asynchronous=False)).result(5)
    assert isinstance(raised.value.__cause__, StaleJob)
    job = jobs.get("n1")
    assert job is not None and (job.status, job.user) == (JobStatus.SCHEDULED, "bob")
    writes.expect("n2", "jobStarted", Limits(LIMITS.start_within, LIMITS.timeout, new=True))
    store.append(job_event(make, "jobStarted", job_id="n2", asynchronous=False)).result(5)
    started = jobs.get("n2")
    assert started is not None and started.status is JobStatus.STARTED


def test_the_stores_writes_take_their_turn_with_the_sqlite_writer(make_store: Any) -> None:
    """Job, resource-state, rule-state and alarm-list writes outside the writer: on SQLite they wait for the
    history's write lock like every other such write, never race the writer on busy_timeout."""
    from linkserver.history.alarms import open_alarm_store
    from linkserver.history.resource_states import open_resource_states
    from linkserver.history.rule_state import open_rule_state

    store = make_store("sqlite")
    jobs = open_job_store(store)
    states = open_resource_states(store)
    store.add_same_commit(JobWrites(jobs, LIMITS))
    make = EventMaker()
    for index in range(3):
        store.append(job_event(make, "jobStarted", job_id=f"w{index}"))
        store.append(job_event(make, "jobCompleted", job_id=f"w{index}"))
    store.append(job_event(make, "jobScheduled", job_id="open"))
    store.flush(5)
    rules = open_rule_state(store)
    alarm_list = open_alarm_store(store)
    for write in (
        lambda: jobs.trim(1),
        lambda: jobs.mark_hanging("open", "not started"),
        lambda: states.forget(["vms"]),
        lambda: rules.save([("rule", "key", None)]),
        lambda: rules.forget(["rule"]),
        lambda: alarm_list.purge_cleared(datetime.now(UTC)),
        lambda: alarm_list.auto_clear(datetime.now(UTC)),
    ):
        done = threading.Event()

        def run(write: Callable[[], object] = write, done: threading.Event = done) -> None:
            write()
            done.set()

        with store.write_lock:
            thread = threading.Thread(target=run)
            thread.start()
            assert not done.wait(0.3), "wrote while another write held the history's lock"
        thread.join(5)
        assert done.is_set()
    assert [job.id for job in jobs.list(status="completed")] == ["w2"]
