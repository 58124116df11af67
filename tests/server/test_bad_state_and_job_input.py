"""Bad input to state machines and jobs (issue 11): transitions out of a final state or a state the
machine no longer has, job events of unknown jobs, out of order or reusing an id. Each is a clear
error or a documented jobWarning, and none changes a state or a job it must not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from linkserver import LinkServer
from linkserver.core.jobs import Job, JobExists, JobStatus, Step, step
from linkserver.core.statemachines import InvalidTransition
from linkserver.history.base import HistoryQuery
from linkserver.loading import ServerConfig, load_all


def server(tmp_path: Path) -> LinkServer:
    _, catalog = load_all()
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return LinkServer(ServerConfig.default(data_dir=tmp_path, database_url=url), catalog)


def events(s: LinkServer, name: str, path: str = "vms.vm1") -> list[dict[str, Any]]:
    s.history.flush(5)
    page = s.history.query(HistoryQuery(masks=(path,), names=(name,), newest_first=False))
    return [e.record for e in page.events]


def job(job_id: str, job_type: str = "VM.START") -> dict[str, str]:
    return {"job_id": job_id, "job_type": job_type, "resource": "vms.vm1"}


def test_a_final_state_refuses_every_transition_and_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        for action in ("destroy", "expunge"):
            s.resources.transition("vms.vm1", action=action, by="ctl")
        for request in ({"action": "recover"}, {"to": "Stopped"}, {"action": "fly"}):
            with pytest.raises(InvalidTransition) as caught:
                s.resources.transition("vms.vm1", by="ctl", **request)
            assert caught.value.state == "Expunging" and caught.value.allowed == ()
            assert str(caught.value).endswith("; Expunging is final: no transition leaves it")
        assert "vm has no action 'fly'; its actions: destroy, expunge, migrate" in str(caught.value)
        assert [r["new"] for r in events(s, "stateChanged")] == ["Destroyed", "Expunging"]
    with server(tmp_path) as s:
        assert s.resources.state("vms.vm1") == "Expunging"
        assert s.resources.describe(s.tree.get("vms.vm1"))["allowed"] == []  # type: ignore[index]


def test_a_stored_state_the_machine_no_longer_has_is_refused_by_name_and_kept(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", action="start", by="ctl")
    database = create_engine(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    with database.begin() as conn:  # as if the machine had a state 'Paused' when it was stored
        conn.execute(text("UPDATE resource_states SET state = 'Paused' WHERE path = 'vms.vm1'"))
    database.dispose()
    with server(tmp_path) as s:
        with pytest.raises(InvalidTransition) as caught:
            s.resources.transition("vms.vm1", action="stop", by="ctl")
        assert str(caught.value) == (
            "vms.vm1 is Paused: action 'stop' is not allowed from Paused; Paused is not a state of vm "
            "(its states: Stopped, Starting, Running, Stopping, Migrating, Error, Destroyed, Expunging); "
            "its definition changed since: add Paused back to it to move the resource on"
        )
        s.fire("vms.vm1", "jobCompleted", job("late"))  # no transition leaves it either
        assert s.resources.state("vms.vm1") == "Paused"
        assert [r["new"] for r in events(s, "stateChanged")] == ["Starting"]


def test_a_job_event_of_an_unknown_job_is_warned_about_and_still_counts(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", action="start", by="ctl")
        s.fire("vms.vm1", "jobCompleted", job("ghost"))  # its job may have been lost (a restart)
        [warning] = events(s, "jobWarning")
        assert warning["job_id"] == "ghost"
        assert "does not fit: no job 'ghost': it was never scheduled or started here" in warning["message"]
        assert s.resources.state("vms.vm1") == "Running"
        with pytest.raises(LookupError):
            s.jobs.get("ghost")  # an unknown job is not made up from an end alone


def test_completed_before_started_is_warned_about_and_moves_nothing(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", action="start", by="ctl")
        s.jobs.schedule("VM.START", "vms.vm1", by="ctl", job_id="j1")
        s.fire("vms.vm1", "jobCompleted", job("j1"))
        [warning] = events(s, "jobWarning")
        assert "scheduled but not started: it cannot be completed before it starts" in warning["message"]
        assert s.resources.state("vms.vm1") == "Starting"  # the event is in history; nothing moved
        assert s.jobs.get("j1").status is JobStatus.SCHEDULED
        assert [r["new"] for r in events(s, "stateChanged")] == ["Starting"]
        s.jobs.advance("j1", Step.START, by="ctl")
        s.fire("vms.vm1", "jobCompleted", job("j1"))  # now it fits: the job ends, the VM runs
        assert s.jobs.get("j1").status is JobStatus.COMPLETED
        assert s.resources.state("vms.vm1") == "Running"
        assert len(events(s, "jobWarning")) == 1


def test_a_job_event_committed_before_it_is_delivered_still_fits_and_moves_the_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer may commit an event (and its job row change) before the firing thread has
    delivered it; judged against that row, the event would not fit its own result."""
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", action="start", by="ctl")
        s.jobs.schedule("VM.START", "vms.vm1", by="ctl", job_id="j1", start=True)
        deliver = s.engine._deliver

        def committed_first(target: Any, fired: Any, commit: Any) -> None:
            s.history.flush(5)
            deliver(target, fired, commit)

        monkeypatch.setattr(s.engine, "_deliver", committed_first)
        s.fire("vms.vm1", "jobCompleted", job("j1"))
        monkeypatch.undo()
        assert s.jobs.get("j1").status is JobStatus.COMPLETED
        assert s.resources.state("vms.vm1") == "Running"
        assert events(s, "jobWarning") == []


def test_a_job_id_used_again_is_refused_or_warned_about_and_the_first_job_stays(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.jobs.schedule("VM.SNAPSHOT", "vms.vm1", by="ctl", job_id="snap", start=True)
        s.jobs.advance("snap", Step.COMPLETE, by="ctl", result="ok")
        with pytest.raises(JobExists, match="job id 'snap' is used already"):
            s.jobs.schedule("VM.SNAPSHOT", "vms.vm1", by="ctl", job_id="snap")
        s.fire("vms.vm1", "jobScheduled", job("snap", "VM.SNAPSHOT"))
        s.fire("vms.vm1", "jobStarted", job("snap", "VM.SNAPSHOT"))
        messages = [w["message"] for w in events(s, "jobWarning")]
        assert len(messages) == 2
        assert "jobScheduled" in messages[0] and "job id 'snap' is used already" in messages[0]
        assert "jobStarted" in messages[1] and "already completed; nothing may follow its end" in messages[1]
        first = s.jobs.get("snap")
        assert (first.status, first.result, first.type) == (JobStatus.COMPLETED, "ok", "VM.SNAPSHOT")


def test_scheduling_a_finished_job_again_is_a_reused_id() -> None:
    done = Job(id="j", type="T", resource="", status=JobStatus.COMPLETED)
    with pytest.raises(JobExists):
        step(done, Step.SCHEDULE, done.scheduled)  # type: ignore[arg-type]
