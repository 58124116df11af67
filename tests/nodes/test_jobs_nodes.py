"""Jobs on several nodes sharing one PostgreSQL: one job view on every node, steps of one job on
any node, a step that lost to another node's refused, and a hanging job reported once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from nodes_helpers import Node

from linkserver.core.jobs import JobError, JobExists, JobStatus, Step
from linkserver.history.base import HistoryQuery
from linkserver.server.app import LinkServer


@pytest.fixture
def make_node(make_node: Callable[[int], LinkServer]) -> Callable[[int], LinkServer]:
    """conftest's nodes with no hanging-checker threads: the test runs check() where it wants."""

    def make(node_id: int) -> LinkServer:
        server = make_node(node_id)
        server.jobs.stop()
        return server

    return make


def stored(server: LinkServer, name: str) -> list[str]:
    page = server.history.query(HistoryQuery(names=(name,), newest_first=False))
    return [e.record["job_id"] for e in page.events]


def test_one_job_view_on_every_node_and_steps_on_any(make_node: Callable[[int], LinkServer]) -> None:
    a, b = make_node(1), make_node(2)
    a.jobs.schedule("ROOT.CHECK", job_id="j1", by="ctl")
    assert b.jobs.get("j1").status is JobStatus.SCHEDULED  # committed before schedule returned
    b.jobs.advance("j1", Step.START, by="ctl")
    a.jobs.advance("j1", Step.PROGRESS, by="ctl", progress=50, message="half")
    with pytest.raises(JobExists):
        b.jobs.schedule("ROOT.CHECK", job_id="j1", by="ctl")
    b.jobs.advance("j1", Step.COMPLETE, by="ctl", result="fine")
    seen = [[(j.id, j.status, j.progress, j.message, j.result) for j in node.jobs.list()] for node in (a, b)]
    assert seen[0] == seen[1] == [("j1", JobStatus.COMPLETED, 100, "half", "fine")]
    with pytest.raises(JobError, match="already completed"):
        a.jobs.advance("j1", Step.FAIL, by="ctl")
    assert stored(a, "jobWarning") == []


def test_a_synchronous_job_never_takes_over_a_job_another_node_just_scheduled(
    make_node: Callable[[int], LinkServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_node(1), make_node(2)
    b.jobs.schedule("ROOT.CHECK", job_id="same", by="b-ctl")
    # A looked before B's commit (the moment between its check and its own commit):
    monkeypatch.setattr(a.jobs, "_current", lambda job_id: None)
    with pytest.raises(JobExists):
        a.jobs.schedule("ROOT.CHECK", job_id="same", by="a-ctl", asynchronous=False)
    monkeypatch.undo()
    job = a.jobs.get("same")
    assert (job.status, job.user, job.asynchronous) == (JobStatus.SCHEDULED, "b-ctl", True)
    assert b.jobs.get("same") == job
    b.jobs.advance("same", Step.START, by="b-ctl")  # still B's to start
    assert a.jobs.get("same").status is JobStatus.STARTED


def test_two_nodes_ending_one_job_at_once_give_one_end_and_one_refusal(
    make_node: Callable[[int], LinkServer],
) -> None:
    a, b = make_node(1), make_node(2)
    rounds = 10
    for index in range(rounds):
        a.jobs.schedule("ROOT.CHECK", job_id=f"r{index}", by="ctl", start=True)
    barrier = threading.Barrier(2)

    def end(server: LinkServer, job_id: str, what: Step) -> Any:
        barrier.wait(10)
        try:
            return server.jobs.advance(job_id, what, by=f"node{server.node_id}")
        except JobError as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        for index in range(rounds):
            job_id = f"r{index}"
            outcomes = [
                f.result(30)
                for f in [pool.submit(end, a, job_id, Step.COMPLETE), pool.submit(end, b, job_id, Step.FAIL)]
            ]
            refused = [o for o in outcomes if isinstance(o, JobError)]
            assert len(refused) == 1, outcomes
            assert "nothing may follow its end" in str(refused[0])
            ended = a.jobs.get(job_id)
            assert ended.status in (JobStatus.COMPLETED, JobStatus.FAILED)
            assert b.jobs.get(job_id).status is ended.status
    ends = stored(a, "jobCompleted") + stored(a, "jobFailed")
    assert sorted(ends) == sorted(f"r{index}" for index in range(rounds))  # one end event per job


def test_a_hanging_job_is_reported_once_whichever_node_checks(make_node: Callable[[int], LinkServer]) -> None:
    a, b = make_node(1), make_node(2)
    a.jobs.schedule("ROOT.CHECK", job_id="slow", by="ctl", start_within=timedelta(milliseconds=1))
    found: list[str] = []
    for _ in range(500):  # until it is 1 ms overdue; each node checks in turn
        for node in (a, b):
            found += [job.id for job in node.jobs.check()]
        if found:
            break
    for node in (a, b, a, b):
        found += [job.id for job in node.jobs.check()]
    assert found == ["slow"]
    assert stored(b, "jobHanging") == ["slow"]
    assert (
        b.jobs.get("slow").hanging
        == a.jobs.get("slow").hanging
        == ("not started within 0.001 s of being scheduled")
    )


def test_two_serve_processes_share_the_job_view_and_it_outlives_a_node(
    start_nodes: Callable[..., list[Node]],
) -> None:
    a, b = start_nodes(2)
    token = a.login("operator")
    with a.http(token) as http:
        answer = http.post("/jobs", json={"type": "ROOT.CHECK", "id": "p1", "start": True})
        assert answer.status_code == 201, answer.text
    with b.http(token) as http:
        assert http.get("/jobs/p1").json()["job"]["status"] == "started"
        answer = http.post("/jobs/p1/progress", json={"progress": 40, "message": "half way"})
        assert answer.status_code == 200, answer.text
    a.stop()  # the node that scheduled it is gone; the job is not
    (c,) = start_nodes(1)
    with c.http(token) as http:
        [job] = http.get("/jobs").json()["jobs"]
        assert (job["id"], job["status"], job["progress"], job["message"]) == (
            "p1",
            "started",
            40,
            "half way",
        )
        assert http.post("/jobs/p1/complete", json={"result": "ok"}).status_code == 200
    with b.http(token) as http:
        answer = http.post("/jobs/p1/fail", json={"result": "late"})
        assert answer.status_code == 409, answer.text
        assert "already completed; nothing may follow its end" in answer.json()["error"]["message"]
        assert http.get("/jobs/p1").json()["job"]["result"] == "ok"
