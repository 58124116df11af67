"""Jobs are kept in the history database: the job view survives a restart, a job's steps go on
after it, and a job reported hanging is not reported again by the restarted server."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from linkserver import LinkServer
from linkserver.core.jobs import JobError, JobStatus, Step
from linkserver.history.base import HistoryQuery
from linkserver.loading import ServerConfig, load_all


def server(tmp_path: Path) -> LinkServer:
    _, catalog = load_all()
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    return LinkServer(ServerConfig.default(data_dir=tmp_path, database_url=url), catalog)


def names(s: LinkServer, name: str) -> list[str]:
    s.history.flush(5)
    page = s.history.query(HistoryQuery(names=(name,), newest_first=False))
    return [e.record["job_id"] for e in page.events]


def test_the_job_view_survives_a_restart_and_its_jobs_go_on(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.engine.add_context("vms.vm1")
        s.resources.transition("vms.vm1", action="start", by="ctl")  # Starting: its job ends it
        s.jobs.schedule(
            "VM.START", "vms.vm1", by="ctl", job_id="boot", start=True, timeout=timedelta(hours=1)
        )
        s.jobs.advance("boot", Step.PROGRESS, by="ctl", progress=30, message="booting")
        s.jobs.schedule("VM.SNAPSHOT", "vms.vm1", by="ctl", job_id="snap", start=True)
        s.jobs.advance("snap", Step.COMPLETE, by="ctl", result="snap-1")
        s.fire("vms.vm1", "jobStarted", {"job_id": "ext", "job_type": "X", "resource": "vms.vm1"})
        s.history.flush(5)  # the plain fire is not waited for: the view has it once it is committed
        before = [(j.id, j.status, j.progress) for j in s.jobs.list()]
    with server(tmp_path) as s:
        assert [(j.id, j.status, j.progress) for j in s.jobs.list()] == before
        boot = s.jobs.get("boot")
        assert (boot.message, boot.timeout, boot.user) == ("booting", timedelta(hours=1), "ctl")
        assert s.jobs.get("snap").result == "snap-1"
        s.jobs.advance("boot", Step.COMPLETE, by="ctl", result="up")  # goes on after the restart
        assert s.jobs.get("boot").status is JobStatus.COMPLETED
        assert s.resources.state("vms.vm1") == "Running"  # jobCompleted of VM.START moved the VM
        with pytest.raises(JobError, match="already completed"):
            s.jobs.advance("snap", Step.FAIL, by="ctl")
        assert names(s, "jobWarning") == []  # the restarted server knew every job


def test_a_hanging_job_is_reported_once_across_a_restart(tmp_path: Path) -> None:
    with server(tmp_path) as s:
        s.jobs.stop()  # no checker thread: check() runs here only
        s.jobs.schedule("ROOT.CHECK", job_id="slow", start_within=timedelta(milliseconds=1))
        s.history.flush(5)
        assert [j.id for j in wait_overdue(s)] == ["slow"]
        assert s.jobs.check() == []
    with server(tmp_path) as s:
        s.jobs.stop()
        assert s.jobs.check() == []  # marked in the table with its jobHanging event
        assert s.jobs.get("slow").hanging == "not started within 0.001 s of being scheduled"
        assert names(s, "jobHanging") == ["slow"]


def wait_overdue(s: LinkServer) -> list[object]:
    """check() until the job is 1 ms past its start limit (the clock is real)."""
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = s.jobs.check()
        if found:
            return found
        time.sleep(0.005)
    return []


def test_a_hanging_job_whose_warning_cannot_be_fired_is_recorded_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with server(tmp_path) as s:
        s.jobs.stop()  # no checker thread: check() runs here only
        s.engine.add_context("vms.gone")
        s.jobs.schedule("VM.CHECK", "vms.gone", job_id="orphan", start_within=timedelta(milliseconds=1))
        s.history.flush(5)
        s.engine.remove_context("vms.gone")  # its jobHanging has nowhere to be fired
        deadline = time.monotonic() + 5
        while s.jobs.get("orphan").hanging is None and time.monotonic() < deadline:
            s.jobs.check()
        assert s.jobs.get("orphan").hanging == "not started within 0.001 s of being scheduled"
        for _ in range(3):
            assert s.jobs.check() == []  # not looked at again
        said = [r.getMessage() for r in caplog.records]
        assert len([m for m in said if "orphan" in m and "could not be fired" in m]) == 1
