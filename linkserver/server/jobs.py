"""The job tracker: jobs run through the API, jobs seen in events, and jobs that hang.

Each job step is an event in the context of the resource the job works on
(``jobScheduled``, ``jobStarted``, ``jobProgress``, ``jobCompleted``,
``jobFailed``; contexts/jobs.yaml), carrying the job id, type, resource, user
and outcome. Steps requested here are checked first (core/jobs.py: a
``completed`` before ``started`` or a reused id is refused and nothing is
fired). Job events fired some other way (``/fire``, a remote controller,
another node) are folded in as they are delivered; one that does not fit is
kept in history as fired and answered with a ``jobWarning`` event naming the
problem, and it moves no state machine (JobTracker.fits). A checker thread
fires ``jobHanging`` once for a job not started within its start limit or not
finished within its timeout.

Jobs live in memory: current ones and the most recent finished ones
(``keep``). After a restart the view starts empty; the events stay in history.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event
from linkserver.core.jobs import (
    HANGING,
    STEP_OF_EVENT,
    WARNING,
    Job,
    JobError,
    JobExists,
    JobNotFound,
    JobStatus,
    Step,
    step,
)
from linkserver.core.paths import display, parse_path
from linkserver.core.permissions import Principal
from linkserver.server.delivery import Subscription
from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.jobs")

DEFAULT_START_WITHIN = timedelta(minutes=1)
DEFAULT_TIMEOUT = timedelta(minutes=10)
DEFAULT_KEEP = 1000
CHECK_INTERVAL = 1.0
VERDICTS = 10_000  # the verdicts on recent job events kept for a second look (see JobTracker.fits)
COMPONENT = "linkserver"


def _now() -> datetime:
    return datetime.now(UTC)


class JobTracker:
    """Current and recent jobs of one engine. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        start_within: timedelta = DEFAULT_START_WITHIN,
        timeout: timedelta = DEFAULT_TIMEOUT,
        keep: int = DEFAULT_KEEP,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.start_within, self.timeout, self.keep = start_within, timeout, keep
        self.check_interval = check_interval
        self.clock = clock
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._verdicts: collections.OrderedDict[int, bool] = collections.OrderedDict()  # event id -> fits
        self._lock = threading.RLock()
        self._own = threading.local()  # set while this tracker fires: its own events are not folded in
        self._subscriptions: list[Subscription] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        for name in sorted(STEP_OF_EVENT):
            try:
                self._subscriptions.append(self.engine.listen("**", name, self._observe))
            except LinkServerError:  # no context defines it: no such events can come
                continue
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="linkserver-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()

    # -- the API's steps -----------------------------------------------------

    def schedule(
        self,
        job_type: str,
        resource: str = "",
        *,
        by: Principal | str | None = None,
        job_id: str | None = None,
        start: bool = False,
        asynchronous: bool = True,
        start_within: timedelta | None = None,
        timeout: timedelta | None = None,
        message: str | None = None,
    ) -> Job:
        """A new job (``start``: started at once; a synchronous job always is).

        JobExists for an id in use; the resource must define the job events (EventNotDefined).
        """
        path = parse_path(resource)
        now = self.clock()
        job = Job(
            id=job_id or uuid.uuid4().hex,
            type=job_type,
            resource=path,
            user=_name(by),
            asynchronous=asynchronous,
            status=JobStatus.SCHEDULED,
            scheduled=now,
            message=message,
            start_within=start_within or self.start_within,
            timeout=timeout or self.timeout,
        )
        with self._lock:
            if job.id in self._jobs:
                raise JobExists(job.id)
            if asynchronous:
                self._fire(job, Step.SCHEDULE, by)
            self._remember(job)
        if start or not asynchronous:
            return self.advance(job.id, Step.START, by=by, message=message)
        return job

    def advance(
        self,
        job_id: str,
        what: Step,
        *,
        by: Principal | str | None = None,
        progress: int | None = None,
        message: str | None = None,
        result: str | None = None,
    ) -> Job:
        """Apply one step (start, progress, complete, fail) and fire its event.

        JobNotFound for an unknown id, JobError for a step out of order; then nothing is fired.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(job_id)
            changes: dict[str, Any] = {}
            if progress is not None:
                changes["progress"] = progress
            if message is not None:
                changes["message"] = message
            if result is not None:
                changes["result"] = result
            if what is Step.COMPLETE:
                changes.setdefault("progress", 100 if job.asynchronous else None)
            after = step(job, what, self.clock(), **changes)
            self._fire(after, what, by)
            self._remember(after)
            return after

    # -- reading -----------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list(self, *, status: str | None = None, resource: str | None = None, limit: int = 100) -> list[Job]:
        """Newest first (by when they were scheduled or started)."""
        with self._lock:
            jobs = list(self._jobs.values())
        if status is not None:
            jobs = [j for j in jobs if j.status == status]
        if resource is not None:
            path = parse_path(resource)
            jobs = [j for j in jobs if j.resource == path]
        jobs.sort(key=lambda j: j.started or j.scheduled or datetime.min.replace(tzinfo=UTC), reverse=True)
        return jobs[:limit]

    # -- hanging jobs --------------------------------------------------------

    def check(self) -> list[Job]:
        """Fire jobHanging for each job overdue now (once per job); returns them."""
        now = self.clock()
        found = []
        with self._lock:
            for job in list(self._jobs.values()):
                reason = job.overdue(now)
                if reason is None:
                    continue
                marked = attrs.evolve(job, hanging=reason)
                self._jobs[job.id] = marked
                found.append(marked)
        for job in found:
            self._fire_quietly(job, HANGING, job.hanging)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.check_interval):
            try:
                self.check()
            except Exception:
                log.exception("the check for hanging jobs failed")

    # -- events ------------------------------------------------------------

    def _observe(self, event: Event) -> None:
        """A job event delivered (fired elsewhere, or by another node): fold it in."""
        self.fits(event)

    def fits(self, event: Event) -> bool:
        """Whether a delivered job event agrees with what the tracker knows of its job.

        The first look folds the event in (or answers it with ``jobWarning``); later looks at the
        same event (the state machines ask too, before moving a resource on it) get the same
        verdict. False only for an event that contradicts a job the tracker knows (out of order,
        after its end, an id used again): such an event changes nothing. An event of a job the
        tracker does not know gets its warning but fits: the job may have been lost (a restart),
        and its events still count.
        """
        if getattr(self._own, "firing", False) or event.name not in STEP_OF_EVENT:
            return True  # this tracker's own events were checked before they were fired
        if not isinstance(event.record.get("job_id"), str):
            return True
        with self._lock:
            verdict = self._verdicts.get(event.id)
            if verdict is not None:
                return verdict
            verdict, problem, message = self._fold(event)
            self._verdicts[event.id] = verdict
            while len(self._verdicts) > VERDICTS:
                self._verdicts.popitem(last=False)
        if problem is not None:
            log.warning("job %s: %s", problem.id, message)
            self._fire_quietly(problem, WARNING, message)
        return verdict

    def _fold(self, event: Event) -> tuple[bool, Job | None, str | None]:
        """``(fits, the job of a jobWarning to fire, its message)``; under the lock."""
        what = STEP_OF_EVENT[event.name]
        record = event.record
        job_id = record["job_id"]
        when = event.created
        known = self._jobs.get(job_id)
        try:
            if known is None:
                if what not in (Step.SCHEDULE, Step.START):
                    raise JobNotFound(job_id)
                job = Job(
                    id=job_id,
                    type=str(record.get("job_type")),
                    resource=event.context,
                    user=record.get("user") or event.author,
                    asynchronous=bool(record.get("asynchronous", True)),
                    status=JobStatus.SCHEDULED if what is Step.SCHEDULE else JobStatus.STARTED,
                    scheduled=when if what is Step.SCHEDULE else None,
                    started=when if what is Step.START else None,
                    message=record.get("message"),
                    start_within=self.start_within,
                    timeout=self.timeout,
                )
            else:
                changes = {
                    k: record[k] for k in ("progress", "message", "result") if record.get(k) is not None
                }
                job = step(known, what, when, **changes)
        except (JobError, JobNotFound, JobExists) as exc:
            problem = Job(
                id=job_id,
                type=str(record.get("job_type")),
                resource=event.context,
                user=record.get("user") or event.author,
                status=known.status if known is not None else JobStatus.SCHEDULED,
            )
            return known is None, problem, f"{event.name} (event {event.id}) does not fit: {exc}"
        self._remember(job)
        return True, None, None

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        self._jobs.move_to_end(job.id)
        finished = [j.id for j in self._jobs.values() if j.status.finished]
        for old in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[old]

    def _fire(self, job: Job, what: Step, by: Principal | str | None) -> Event:
        return self._fire_event(job, what.event, by, job.message)

    def _fire_event(self, job: Job, name: str, by: Principal | str | None, message: str | None) -> Event:
        data = {
            "job_id": job.id,
            "job_type": job.type,
            "resource": job.resource or "root",
            "user": job.user,
            "asynchronous": job.asynchronous,
            "progress": job.progress,
            "message": message,
            "result": job.result,
        }
        self._own.firing = True
        try:
            return self.engine.fire(job.resource, name, data, author=by if by is not None else COMPONENT)
        finally:
            self._own.firing = False

    def _fire_quietly(self, job: Job, name: str, message: str | None) -> None:
        try:
            self._fire_event(job, name, None, message)
        except LinkServerError:
            log.warning(
                "job %s in %s: %s (%s is not defined there)", job.id, display(job.resource), message, name
            )


def _name(by: Principal | str | None) -> str | None:
    return by.name if isinstance(by, Principal) else by


def job_json(job: Job, now: datetime) -> dict[str, Any]:
    duration = job.duration(now)
    return {
        "id": job.id,
        "type": job.type,
        "resource": job.resource or "root",
        "user": job.user,
        "status": str(job.status),
        "asynchronous": job.asynchronous,
        "scheduled": job.scheduled.isoformat() if job.scheduled else None,
        "started": job.started.isoformat() if job.started else None,
        "finished": job.finished.isoformat() if job.finished else None,
        "duration": duration.total_seconds() if duration is not None else None,
        "progress": job.progress,
        "message": job.message,
        "result": job.result,
        "hanging": job.hanging,
    }
