"""Resources and jobs through the network API, the clients and the command line, on a real server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from client_helpers import LiveServer
from test_client_user_cli import cli

from linkserver.client.aio import AsyncClient
from linkserver.core.jobs import JobError, JobExists, JobNotFound
from linkserver.core.statemachines import InvalidTransition
from linkserver.history.base import HistoryQuery


def job_events(live: LiveServer, path: str) -> list[tuple[str, dict[str, Any]]]:
    live.server.history.flush()
    page = live.server.history.query(HistoryQuery(masks=(path,), newest_first=False))
    return [(e.name, e.record) for e in page.events if e.category == "AsyncJobEvent"]


def test_a_transition_through_the_client_and_a_refused_one(live: LiveServer, client: Any) -> None:
    client.add_context("vms.vm1")
    answer = client.transition("vms.vm1", "start")
    assert answer["resource"] == {
        "path": "vms.vm1",
        "machine": "vm",
        "state": "Starting",
        "allowed": [
            'on jobCompleted -> Running if data.job_type == "VM.START"',
            'on jobFailed -> Error if data.job_type == "VM.START"',
        ],
        "actions": [],
    }
    assert answer["event"].record["by"] == "admin"
    with pytest.raises(InvalidTransition) as caught:
        client.transition("vms.vm1", "stop")
    assert caught.value.status == 409  # type: ignore[attr-defined]
    assert "vms.vm1 is Starting: action 'stop' is not allowed from Starting" in str(caught.value)
    assert client.resource("vms.vm1")["state"] == "Starting"
    assert [r["path"] for r in client.resources("vms.*")] == ["vms.vm1"]


def test_a_job_in_a_with_block_completes_and_moves_the_vm(live: LiveServer, client: Any) -> None:
    client.add_context("vms.vm1")
    client.transition("vms.vm1", "start")
    with client.job("VM.START", resource="vms.vm1") as job:
        job.progress(50, "booting")
    assert client.resource("vms.vm1")["state"] == "Running"
    info = client.job_status(job.id)
    assert info["status"] == "completed" and info["progress"] == 100 and info["user"] == "admin"
    assert [name for name, _ in job_events(live, "vms.vm1")] == [
        "jobScheduled", "jobStarted", "jobProgress", "jobCompleted",
    ]  # fmt: skip
    assert {record["job_id"] for _, record in job_events(live, "vms.vm1")} == {job.id}
    client.transition("vms.vm1", "stop")
    with pytest.raises(RuntimeError), client.job("VM.STOP", resource="vms.vm1"):
        raise RuntimeError("the hypervisor said no")
    assert client.resource("vms.vm1")["state"] == "Error"
    failed = client.jobs(status="failed")
    assert [j["result"] for j in failed] == ["RuntimeError: the hypervisor said no"]


def test_bad_job_steps_are_refused_and_change_nothing(live: LiveServer, client: Any) -> None:
    job = client.schedule_job("VOLUME.RESIZE", job_id="resize-1")
    with pytest.raises(JobError, match="scheduled but not started: it cannot be completed before it starts"):
        client.job_step("resize-1", "complete")
    with pytest.raises(JobExists, match="job id 'resize-1' is used already"):
        client.schedule_job("VOLUME.RESIZE", job_id="resize-1")
    with pytest.raises(JobNotFound):
        client.job_step("nope", "start")
    assert client.job_status(job["id"])["status"] == "scheduled"
    client.job_step("resize-1", "start")
    client.job_step("resize-1", "complete", result="10 GB")
    with pytest.raises(JobError, match="already completed; nothing may follow its end"):
        client.job_step("resize-1", "fail")


def test_a_job_event_that_does_not_fit_gets_a_warning_event(live: LiveServer, client: Any) -> None:
    client.fire("", "jobCompleted", {"job_id": "ghost", "job_type": "X", "resource": "root"})
    warnings = [r for name, r in job_events(live, "root") if name == "jobWarning"]
    assert [w["job_id"] for w in warnings] == ["ghost"]
    assert "does not fit: no job 'ghost'" in warnings[0]["message"]


def test_a_job_not_started_in_time_is_reported_hanging(live: LiveServer, client: Any) -> None:
    client.schedule_job("VM.SNAPSHOT", job_id="slow", start_within=0.01)
    time.sleep(0.05)
    found = [job.id for job in live.server.jobs.check()]
    assert found in (["slow"], [])  # [] when the tracker's own checker (every second) was first
    assert live.server.jobs.check() == []  # once per job
    hanging = [r for name, r in job_events(live, "root") if name == "jobHanging"]
    assert [h["message"] for h in hanging] == ["not started within 0.01 s of being scheduled"]
    assert client.job_status("slow")["hanging"] == "not started within 0.01 s of being scheduled"


def test_the_async_client_runs_a_job_with_async_with(live: LiveServer) -> None:
    async def run() -> str:
        async with AsyncClient(live.url) as client:
            async with client.job("ROOT.CHECK") as job:
                await job.progress(10)
            return (await client.job_status(job.id))["status"]

    assert asyncio.run(run()) == "completed"


def test_the_states_transition_and_jobs_commands(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    live.server.engine.add_context("vms.vm9")
    url = ("--url", live.url)
    code, out, err = cli(capsys, "transition", "vms.vm9", "destroy", *url)
    assert code == 0 and out.startswith("vms.vm9: Stopped -> Destroyed (event "), err
    code, out, err = cli(capsys, "states", "vms.*", *url)
    assert code == 0, err
    assert out.splitlines()[1].split()[:3] == ["vms.vm9", "vm", "Destroyed"]
    code, _, err = cli(capsys, "transition", "vms.vm9", "start", *url)
    assert code != 0 and "vms.vm9 is Destroyed: action 'start' is not allowed" in err
    code, out, err = cli(capsys, "jobs", *url)
    assert code == 0 and "job" in out.splitlines()[0], err
