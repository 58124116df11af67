"""The job tracker: jobs run through the API, jobs seen in events, and jobs that hang.

Each job step is an event in the context of the resource the job works on
(``jobScheduled``, ``jobStarted``, ``jobProgress``, ``jobCompleted``,
``jobFailed``; contexts/jobs.yaml), carrying the job id, type, resource, user
and outcome. Steps requested here are checked first (core/jobs.py: a
``completed`` before ``started`` or a reused id is refused and nothing is
fired). Job events fired some other way on this node (``/fire``, a remote
controller, a bridge) are judged as they are delivered; one that does not fit
is kept in history as fired and answered with a ``jobWarning`` event naming the
problem, and it moves no state machine (JobTracker.fits).

Jobs are kept in the history database (history/jobs.py: the ``jobs`` table,
written in the commit of the job events), so the view survives a restart and
is the same on every node. A step is decided against the committed job, or
against this node's own job events not committed yet. On a shared database a
requested step waits for its commit: when another node moved the job first,
the step is decided again (and refused when it no longer fits).

Once a second, the node holding the ``jobs`` lock (:meth:`HistoryStore.exclusive`:
one node of a cluster) fires ``jobHanging`` for a job not started within its
start limit or not finished within its timeout. The job's row is marked in the
same commit, only if it was not marked before, so a job is reported once, across
nodes and restarts.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from linkserver.core.errors import HistoryError, LinkServerError
from linkserver.core.events import Event, node_of
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
from linkserver.history.base import HistoryStore
from linkserver.history.jobs import JobWrites, Limits, StaleJob, apply, open_job_store
from linkserver.server.delivery import Subscription
from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.jobs")

DEFAULT_START_WITHIN = timedelta(minutes=1)
DEFAULT_TIMEOUT = timedelta(minutes=10)
DEFAULT_KEEP = 1000
CHECK_INTERVAL = 1.0
VERDICTS = 10_000  # the verdicts on recent job events kept for a second look (see JobTracker.fits)
COMMITTED = 10_000  # ids of job events committed lately (a late look must not shadow the table)
COMPONENT = "linkserver"
SHARED_WAIT = 30.0  # seconds a step on a shared database waits for its commit
LOCK = "jobs"


def _now() -> datetime:
    return datetime.now(UTC)


class JobTracker:
    """Current and recent jobs of one engine, kept in ``history``'s database. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        history: HistoryStore | None = None,
        *,
        start_within: timedelta = DEFAULT_START_WITHIN,
        timeout: timedelta = DEFAULT_TIMEOUT,
        keep: int = DEFAULT_KEEP,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.engine = engine
        self.history = history if history is not None else engine.history
        self.start_within, self.timeout, self.keep = start_within, timeout, keep
        self.check_interval = check_interval
        self.clock = clock
        self.store = open_job_store(self.history)
        self.writes = JobWrites(self.store, Limits(start_within, timeout))
        self.writes.watchers.append(self._settled)
        self.history.add_same_commit(self.writes)
        # This node's job events not committed yet: job id -> (the job after it, the event id).
        self._pending: dict[str, tuple[Job, int]] = {}
        self._committed: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._pending_lock = threading.Lock()  # never held while firing (the writer takes it)
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

        JobExists for an id in use (also by a job that ended, or on another node); the
        resource must define the job events (EventNotDefined).
        """
        path = parse_path(resource)
        now = self.clock()
        job = Job(
            id=job_id or uuid.uuid4().hex,
            type=job_type,
            resource=path,
            user=_name(by),
            asynchronous=asynchronous,
            status=JobStatus.SCHEDULED if asynchronous else JobStatus.STARTED,
            scheduled=now if asynchronous else None,
            started=None if asynchronous else now,
            message=message,
            start_within=start_within or self.start_within,
            timeout=timeout or self.timeout,
        )
        with self._lock:
            if self._current(job.id) is not None:
                raise JobExists(job.id)
            try:
                job = self._fire(job, Step.SCHEDULE if asynchronous else Step.START, by, new=True)
            except HistoryError as exc:
                if isinstance(exc.__cause__, StaleJob):  # another node took the id meanwhile
                    raise JobExists(job.id) from None
                raise
        if start and asynchronous:
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

        JobNotFound for an unknown id, JobError for a step out of order (also when another
        node's step of the job came first); then nothing is fired.
        """
        changes: dict[str, Any] = {}
        if progress is not None:
            changes["progress"] = progress
        if message is not None:
            changes["message"] = message
        if result is not None:
            changes["result"] = result
        with self._lock:
            for attempt in (1, 2, 3):
                job = self._current(job_id)
                if job is None:
                    raise JobNotFound(job_id)
                if what is Step.COMPLETE:
                    changes.setdefault("progress", 100 if job.asynchronous else None)
                after = step(job, what, self.clock(), **changes)
                try:
                    return self._fire(after, what, by)
                except HistoryError as exc:
                    if not isinstance(exc.__cause__, StaleJob):
                        raise
                    if attempt == 3:  # a conflict (409), not a server error
                        raise JobError(
                            f"job {job_id!r} was changed on another node at each of three tries; "
                            "read it again (GET /jobs/{id}) and retry the step if it still fits"
                        ) from exc
                    continue  # another node moved the job: decide again against it
        raise AssertionError("unreachable")

    # -- reading -----------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self._current(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list(self, *, status: str | None = None, resource: str | None = None, limit: int = 100) -> list[Job]:
        """Newest first (by when they were scheduled or started)."""
        path = parse_path(resource) if resource is not None else None
        found = {job.id: job for job in self.store.list(status=status, resource=path, limit=limit)}
        with self._pending_lock:
            pending = [job for job, _ in self._pending.values()]
        for job in pending:  # this node's own steps not committed yet
            if (status is None or job.status == status) and (path is None or job.resource == path):
                found[job.id] = job
            elif job.id in found:
                del found[job.id]
        jobs = sorted(sorted(found.values(), key=lambda j: j.id), key=_begun, reverse=True)  # as the table
        return jobs[:limit]

    def _current(self, job_id: str) -> Job | None:
        with self._pending_lock:
            pending = self._pending.get(job_id)
        if pending is not None:
            return pending[0]
        return self.store.get(job_id)

    def _pend(self, job: Job, event_id: int) -> None:
        with self._pending_lock:
            if event_id not in self._committed:  # committed already: the table has it
                self._pending[job.id] = (job, event_id)

    def _settled(self, events: Sequence[Event]) -> None:
        """Job events committed or rejected (in the committing thread): the table has the truth."""
        with self._pending_lock:
            for event in events:
                self._committed[event.id] = None
                known = self._pending.get(str(event.record.get("job_id")))
                if known is not None and known[1] <= event.id:
                    del self._pending[known[0].id]
            while len(self._committed) > COMMITTED:
                self._committed.popitem(last=False)

    # -- hanging jobs --------------------------------------------------------

    def check(self) -> list[Job]:
        """Fire jobHanging for each job overdue now, once per job, if this node holds the
        ``jobs`` lock (one node of a cluster checks); returns the jobs reported."""
        with self.history.exclusive(LOCK) as mine:
            if not mine:
                return []
            now = self.clock()
            found = []
            for job in self.store.unfinished():
                reason = job.overdue(now)
                if reason is None or self._current(job.id) != job:  # moved on meanwhile
                    continue
                marked = attrs.evolve(job, hanging=reason)
                try:
                    self._fire_event(marked, HANGING, None, reason, expect=True, wait=True)
                except HistoryError as exc:
                    if isinstance(exc.__cause__, StaleJob):  # reported already, or it ended meanwhile
                        continue
                    raise
                except LinkServerError as exc:
                    # Recorded anyway, so it is said once, not at every check for ever.
                    if self.store.mark_hanging(job.id, reason):
                        log.warning("job %s in %s: %s (%s could not be fired: %s)", job.id,
                                    display(job.resource), reason, HANGING, exc)  # fmt: skip
                    continue
                found.append(marked)
            self.store.trim(self.keep)
            return found

    def _run(self) -> None:
        while not self._stop.wait(self.check_interval):
            try:
                self.check()
            except Exception:
                log.exception("the check for hanging jobs failed")

    # -- events ------------------------------------------------------------

    def _observe(self, event: Event) -> None:
        """A job event delivered (fired elsewhere on this node): fold it in."""
        self.fits(event)

    def fits(self, event: Event) -> bool:
        """Whether a delivered job event agrees with what is known of its job.

        The first look judges the event (and answers one that does not fit with
        ``jobWarning``); later looks at the same event (the state machines ask too, before
        moving a resource on it) get the same verdict. False only for an event that
        contradicts a known job (out of order, after its end, an id used again): such an
        event changes nothing. An event of an unknown job gets its warning but fits: its job
        may be gone (trimmed, or from before jobs were kept), and its events still count.
        An event fired on another node was judged there: it fits here.
        """
        if getattr(self._own, "firing", False) or event.name not in STEP_OF_EVENT:
            return True  # this tracker's own events were checked before they were fired
        if not isinstance(event.record.get("job_id"), str):
            return True
        if node_of(event.id) != self.engine.node_id:
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
        record = event.record
        job_id = record["job_id"]
        known = self._current(job_id)
        try:
            job = apply(known, event, self.writes.limits)
        except (JobError, JobNotFound, JobExists) as exc:
            if self.store.changed_by(job_id) == event.id:
                # Committed before it was delivered, and its commit moved the job: the row is
                # the job after it already, which the event cannot follow again.
                return True, None, None
            problem = Job(
                id=job_id,
                type=str(record.get("job_type")),
                resource=event.context,
                user=record.get("user") or event.author,
                status=known.status if known is not None else JobStatus.SCHEDULED,
            )
            return known is None, problem, f"{event.name} (event {event.id}) does not fit: {exc}"
        self._pend(job, event.id)
        return True, None, None

    def _fire(self, job: Job, what: Step, by: Principal | str | None, *, new: bool = False) -> Job:
        """Fire ``what`` of ``job`` (the job after it); the job with the event's time, as stored.

        Waited for on every store: the event carries a check that its job is still where this
        step found it, and a job event fired meanwhile by someone else (another node, or a
        controller's own ``/fire`` here) may move the job first; the step is confirmed only
        once it is committed, never answered and then refused. ``new``: the step begins the job,
        and its row must not exist (another node may have taken the id since we looked)."""
        event = self._fire_event(job, what.event, by, job.message, expect=True, wait=True, new=new)
        return _stamped(job, event)

    def _fire_event(
        self,
        job: Job,
        name: str,
        by: Principal | str | None,
        message: str | None,
        *,
        expect: bool = False,
        wait: bool = False,
        new: bool = False,
    ) -> Event:
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
        if expect:
            limits = Limits(job.start_within or self.start_within, job.timeout or self.timeout, new=new)
            self.writes.expect(job.id, name, limits)
        self._own.firing = True
        try:
            event = self.engine.fire(
                job.resource,
                name,
                data,
                author=by if by is not None else COMPONENT,
                durable=wait,
                timeout=SHARED_WAIT if wait else None,
            )
        except BaseException as exc:
            if expect and not isinstance(exc, (HistoryError, TimeoutError)):  # never queued
                self.writes.dropped(job.id, name)
            raise
        finally:
            self._own.firing = False
        if name != WARNING:
            self._pend(_stamped(job, event), event.id)
        return event

    def _fire_quietly(self, job: Job, name: str, message: str | None) -> None:
        try:
            self._fire_event(job, name, None, message)
        except LinkServerError:
            log.warning(
                "job %s in %s: %s (%s is not defined there)", job.id, display(job.resource), message, name
            )


_TIME_OF = {
    "jobScheduled": "scheduled",
    "jobStarted": "started",
    "jobCompleted": "finished",
    "jobFailed": "finished",
}


def _stamped(job: Job, event: Event) -> Job:
    """``job`` with the time of ``event`` where its step keeps one: the table keeps the event's."""
    field = _TIME_OF.get(event.name)
    return attrs.evolve(job, **{field: event.created}) if field is not None else job  # type: ignore[misc]


def _begun(job: Job) -> datetime:
    return job.started or job.scheduled or datetime.min.replace(tzinfo=UTC)


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
