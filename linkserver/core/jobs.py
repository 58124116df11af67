"""Jobs: long-running operations followed by their events (DESIGN.md §2).

A :class:`Job` is pure data; :func:`step` is the one rule of what may follow
what: an asynchronous job is ``scheduled`` (optional), ``started``, gives any
number of ``progress`` steps, and ends ``completed`` or ``failed``; a
synchronous one has ``started`` and its end only. Anything else is refused
with a :class:`JobError` naming the job and its status. Where jobs are kept,
the events they fire and the detection of hanging jobs are the server's
(linkserver/server/jobs.py).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from linkserver.core.errors import LinkServerError


class JobError(LinkServerError, ValueError):
    """A job step that does not fit the job's history (out of order, after its end)."""


class JobNotFound(LinkServerError, LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}: it was never scheduled or started here (or is too old)")
        self.job_id = job_id


class JobExists(LinkServerError, ValueError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job id {job_id!r} is used already; every job needs an id of its own")
        self.job_id = job_id


class JobStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class Step(enum.StrEnum):
    """What happens to a job; each is one event (``jobScheduled``, ``jobStarted``...)."""

    SCHEDULE = "scheduled"
    START = "started"
    PROGRESS = "progress"
    COMPLETE = "completed"
    FAIL = "failed"

    @property
    def event(self) -> str:
        return EVENT_OF[self]


EVENT_OF = {
    Step.SCHEDULE: "jobScheduled",
    Step.START: "jobStarted",
    Step.PROGRESS: "jobProgress",
    Step.COMPLETE: "jobCompleted",
    Step.FAIL: "jobFailed",
}
STEP_OF_EVENT = {event: step for step, event in EVENT_OF.items()}
HANGING = "jobHanging"
WARNING = "jobWarning"


@attrs.frozen(kw_only=True)
class Job:
    id: str
    type: str
    resource: str
    user: str | None = None
    asynchronous: bool = True
    status: JobStatus = JobStatus.SCHEDULED
    scheduled: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    progress: int | None = None
    message: str | None = None
    result: str | None = None
    start_within: timedelta | None = None
    timeout: timedelta | None = None
    hanging: str | None = None  # why it was reported hanging (once per job)

    def duration(self, now: datetime) -> timedelta | None:
        begin = self.started or self.scheduled
        if begin is None:
            return None
        return (self.finished or now) - begin

    def overdue(self, now: datetime) -> str | None:
        """Why the job hangs now (not started within its limit, or running past its timeout), or None."""
        if self.hanging is not None or self.status.finished:
            return None
        if self.status is JobStatus.SCHEDULED:
            limit, since = self.start_within, self.scheduled
        else:
            limit, since = self.timeout, self.started
        if limit is None or since is None or now - since <= limit:
            return None
        if self.status is JobStatus.SCHEDULED:
            return f"not started within {_seconds(limit)} of being scheduled"
        return f"not finished within its timeout of {_seconds(limit)}"


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"


def step(job: Job, what: Step, when: datetime, **changes: object) -> Job:
    """``job`` after ``what`` happened at ``when``; JobError when it may not happen now."""
    status = job.status
    if what is Step.SCHEDULE:  # a job id used again, whether or not its first job ended
        raise JobExists(job.id)
    if status.finished:
        raise JobError(f"job {job.id} ({job.type}) already {status}; nothing may follow its end")
    if what is Step.START:
        if status is not JobStatus.SCHEDULED:
            raise JobError(f"job {job.id} ({job.type}) is started already")
        return attrs.evolve(job, status=JobStatus.STARTED, started=when, **changes)  # type: ignore[arg-type]
    if status is JobStatus.SCHEDULED:
        raise JobError(
            f"job {job.id} ({job.type}) is scheduled but not started: it cannot be {what} before it starts"
        )
    if what is Step.PROGRESS:
        if not job.asynchronous:
            raise JobError(f"job {job.id} ({job.type}) is synchronous: it reports no progress")
        return attrs.evolve(job, **changes)  # type: ignore[arg-type]
    final = JobStatus.COMPLETED if what is Step.COMPLETE else JobStatus.FAILED
    return attrs.evolve(job, status=final, finished=when, **changes)  # type: ignore[arg-type]


def fold(
    known: Job | None,
    name: str,
    record: dict[str, object],
    *,
    context: str,
    author: str | None,
    when: datetime,
    start_within: timedelta | None,
    timeout: timedelta | None,
) -> Job:
    """The job after its event ``name`` (``jobScheduled``... or ``jobHanging``) with data
    ``record``, fired in ``context`` at ``when``; ``known`` is the job before it (None: unknown).

    An unknown job is begun by ``jobScheduled`` or ``jobStarted`` (with ``start_within`` and
    ``timeout``); anything else raises: JobNotFound (an unknown job), JobExists (an id used
    again), JobError (out of order, after its end). ``jobHanging`` marks a job hanging once.
    The same rules are the SQL of linkserver/history/jobs.py."""
    job_id = str(record["job_id"])
    if name == HANGING:
        if known is None:
            raise JobNotFound(job_id)
        if known.hanging is not None or known.status.finished:
            raise JobError(f"job {job_id} ({known.type}) is reported hanging already or has ended")
        return attrs.evolve(known, hanging=str(record.get("message") or "hanging"))
    what = STEP_OF_EVENT[name]
    if known is None:
        if what not in (Step.SCHEDULE, Step.START):
            raise JobNotFound(job_id)
        user, message = record.get("user"), record.get("message")
        progress, result = record.get("progress"), record.get("result")
        return Job(
            id=job_id,
            type=str(record.get("job_type")),
            resource=context,
            user=str(user) if user is not None else author,
            asynchronous=bool(record.get("asynchronous", True)),
            status=JobStatus.SCHEDULED if what is Step.SCHEDULE else JobStatus.STARTED,
            scheduled=when if what is Step.SCHEDULE else None,
            started=when if what is Step.START else None,
            progress=progress if isinstance(progress, int) else None,  # as the SQL of history/jobs.py
            message=str(message) if message is not None else None,
            result=str(result) if result is not None else None,
            start_within=start_within,
            timeout=timeout,
        )
    changes = {k: record[k] for k in ("progress", "message", "result") if record.get(k) is not None}
    return step(known, what, when, **changes)
