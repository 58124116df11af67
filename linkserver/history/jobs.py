"""Where jobs live: the ``jobs`` table (SQL) or a dict, written in the job events' commit.

One row per job id holds what its events said so far (status, times, progress,
message, result, whether it was reported hanging). The rows are written by
:class:`JobWrites`, a :class:`~linkserver.history.same_commit.SameCommit` hook,
in the **same transaction** as the job events (``jobScheduled``,
``jobStarted``, ``jobProgress``, ``jobCompleted``, ``jobFailed``,
``jobHanging``), whoever fired them: the tracker's own steps, ``/fire``, a
remote controller, another node. So the view survives a restart and is the
same on every node, and it never says more than history holds.

Each event applies the rules of :func:`linkserver.core.jobs.fold` as one
conditional statement (``UPDATE ... WHERE status = 'started'``, an insert that
does nothing for an id in use): an event that does not fit its job is stored as
fired and changes no row. A step the tracker asked for (:meth:`JobWrites.expect`)
must change its row: when it does not (another node moved the job meanwhile), the
commit refuses its event with :class:`StaleJob` and nothing is stored.

Every implementation passes the contract suite in ``tests/history/test_job_store.py``
(memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import Engine, delete, func, select, update

from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event
from linkserver.core.jobs import (
    HANGING,
    STEP_OF_EVENT,
    Job,
    JobError,
    JobExists,
    JobNotFound,
    JobStatus,
    fold,
)
from linkserver.history.base import HistoryStore
from linkserver.history.codec import micros
from linkserver.history.same_commit import Statement
from linkserver.history.schema import jobs as jobs_table

#: The events that move a job's row.
JOB_EVENTS = frozenset((*STEP_OF_EVENT, HANGING))
_FINISHED = (str(JobStatus.COMPLETED), str(JobStatus.FAILED))


class StaleJob(LinkServerError):
    """A job step the tracker decided found its job moved on (another node): not stored."""

    def __init__(self, job_id: str, name: str) -> None:
        super().__init__(
            f"job {job_id}: {name} no longer fits it, another node changed the job meanwhile; "
            "look at the job again"
        )
        self.job_id, self.name = job_id, name


class Limits:
    """``start_within`` and ``timeout`` of a job begun by an event that names none; ``new``: the
    event begins a job that must not exist yet (a synchronous job's ``jobStarted`` from
    ``schedule``, never the start of a scheduled one)."""

    def __init__(self, start_within: timedelta, timeout: timedelta, *, new: bool = False) -> None:
        self.start_within, self.timeout, self.new = start_within, timeout, new


class JobStore(abc.ABC):
    """The jobs of one history database. Thread-safe."""

    @abc.abstractmethod
    def get(self, job_id: str) -> Job | None:
        """The job ``job_id`` as committed, or None."""

    @abc.abstractmethod
    def changed_by(self, job_id: str) -> int | None:
        """The id of the event that last changed the job's committed row, or None."""

    @abc.abstractmethod
    def list(self, *, status: str | None = None, resource: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs newest first (by when they started, or were scheduled)."""

    @abc.abstractmethod
    def unfinished(self) -> list[Job]:
        """Every job not ended and not reported hanging (what the hanging check looks at)."""

    @abc.abstractmethod
    def trim(self, keep: int) -> int:
        """Delete the ended jobs but the ``keep`` that ended last; returns how many went."""

    @abc.abstractmethod
    def mark_hanging(self, job_id: str, reason: str) -> bool:
        """Record ``reason`` as why the job hangs, if nothing is recorded yet, without an event
        (its ``jobHanging`` could not be fired): True if this call recorded it."""

    @abc.abstractmethod
    def statements(self, dialect: str, steps: Sequence[tuple[Event, Limits, bool]]) -> list[Statement]:
        """The statements that apply ``steps`` (event, its limits, must it change its row?)
        in the events' transaction, in order."""

    @abc.abstractmethod
    def committed(self, steps: Sequence[tuple[Event, Limits, bool]]) -> None:
        """``steps`` are committed (the memory store applies them now)."""


class MemoryJobStore(JobStore):
    def __init__(self) -> None:
        self._jobs: dict[str, tuple[Job, int]] = {}  # job id -> (job, its last event id)
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            found = self._jobs.get(job_id)
        return found[0] if found is not None else None

    def changed_by(self, job_id: str) -> int | None:
        with self._lock:
            found = self._jobs.get(job_id)
        return found[1] if found is not None else None

    def list(self, *, status: str | None = None, resource: str | None = None, limit: int = 100) -> list[Job]:
        with self._lock:
            found = [job for job, _ in self._jobs.values()]
        found = [j for j in found if (status is None or j.status == status)]
        found = [j for j in found if (resource is None or j.resource == resource)]
        found.sort(key=lambda j: j.id)
        found.sort(key=_begun, reverse=True)  # ties by id, as the SQL store
        return found[:limit]

    def unfinished(self) -> list[Job]:
        with self._lock:
            return [j for j, _ in self._jobs.values() if not j.status.finished and j.hanging is None]

    def mark_hanging(self, job_id: str, reason: str) -> bool:
        with self._lock:
            found = self._jobs.get(job_id)
            if found is None or found[0].hanging is not None:
                return False
            self._jobs[job_id] = (attrs.evolve(found[0], hanging=reason), found[1])
            return True

    def trim(self, keep: int) -> int:
        with self._lock:
            ended = sorted((j for j, _ in self._jobs.values() if j.status.finished), key=_ended, reverse=True)
            for job in ended[keep:]:
                del self._jobs[job.id]
            return max(0, len(ended) - keep)

    def statements(self, dialect: str, steps: Sequence[tuple[Event, Limits, bool]]) -> list[Statement]:
        return []  # one process: the tracker's lock decides

    def committed(self, steps: Sequence[tuple[Event, Limits, bool]]) -> None:
        with self._lock:
            for event, limits, _ in steps:
                known = self._jobs.get(str(event.record.get("job_id")))
                try:
                    job = apply(known[0] if known is not None else None, event, limits)
                except (JobError, JobNotFound, JobExists):
                    continue  # stored as fired; it changes no job
                self._jobs[job.id] = (job, event.id)


def apply(known: Job | None, event: Event, limits: Limits) -> Job:
    """``known`` after ``event`` (fold's rules); raises when the event does not fit."""
    return fold(
        known,
        event.name,
        dict(event.record),
        context=event.context,
        author=event.author,
        when=event.created,
        start_within=limits.start_within,
        timeout=limits.timeout,
    )


def _begun(job: Job) -> datetime:
    moment = job.started or job.scheduled
    return moment if moment is not None else datetime.min.replace(tzinfo=UTC)


def _ended(job: Job) -> datetime:
    return job.finished or _begun(job)


_COLUMNS = (
    "id", "type", "resource", '"user"', "asynchronous", "status", "scheduled", "started", "finished",
    "progress", "message", "result", "start_within", "timeout", "hanging", "event_id",
)  # fmt: skip
_INSERT = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({{marks}}) ON CONFLICT (id) DO "
_SQL = {
    # A new job; an id in use changes nothing (a reused id).
    "jobScheduled": _INSERT + "NOTHING",
    # A new (synchronous, or never scheduled) job, or the start of a scheduled one.
    "jobStarted": _INSERT + "UPDATE SET status = excluded.status, started = excluded.started, "
    "progress = COALESCE(excluded.progress, jobs.progress), "
    "message = COALESCE(excluded.message, jobs.message), "
    "result = COALESCE(excluded.result, jobs.result), event_id = excluded.event_id "
    "WHERE jobs.status = 'scheduled'",
    "jobProgress": "UPDATE jobs SET progress = COALESCE({m}, progress), message = COALESCE({m}, message), "
    "result = COALESCE({m}, result), event_id = {m} WHERE id = {m} AND status = 'started' AND asynchronous",
    "end": "UPDATE jobs SET status = {m}, finished = {m}, progress = COALESCE({m}, progress), "
    "message = COALESCE({m}, message), result = COALESCE({m}, result), event_id = {m} "
    "WHERE id = {m} AND status = 'started'",
    HANGING: "UPDATE jobs SET hanging = {m}, event_id = {m} WHERE id = {m} AND hanging IS NULL "
    "AND status IN ('scheduled', 'started')",
}
_MARK = {"sqlite": "?", "postgresql": "%s"}


def _sql(dialect: str, name: str, *, new: bool = False) -> str:
    mark = _MARK[dialect]
    key = "end" if name in ("jobCompleted", "jobFailed") else "jobScheduled" if new else name
    text = _SQL[key]
    if key in ("jobScheduled", "jobStarted"):
        return text.format(marks=", ".join([mark] * len(_COLUMNS)))
    return text.replace("{m}", mark)


def _seconds(delta: timedelta | None) -> float | None:
    return delta.total_seconds() if delta is not None else None


class SqlJobStore(JobStore):
    """``engine()`` gives the history's engine (valid between its start and stop);
    ``write_lock()`` the history's lock for writes besides its writer's."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def get(self, job_id: str) -> Job | None:
        with self._engine().connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return _job(row) if row is not None else None

    def changed_by(self, job_id: str) -> int | None:
        with self._engine().connect() as conn:
            found = conn.execute(select(jobs_table.c.event_id).where(jobs_table.c.id == job_id)).first()
        return found.event_id if found is not None else None

    def list(self, *, status: str | None = None, resource: str | None = None, limit: int = 100) -> list[Job]:
        t = jobs_table.c
        query = select(jobs_table).order_by(func.coalesce(t.started, t.scheduled).desc(), t.id).limit(limit)
        if status is not None:
            query = query.where(t.status == status)
        if resource is not None:
            query = query.where(t.resource == resource)
        with self._engine().connect() as conn:
            return [_job(row) for row in conn.execute(query)]

    def unfinished(self) -> list[Job]:
        t = jobs_table.c
        query = select(jobs_table).where(t.status.not_in(_FINISHED), t.hanging.is_(None))
        with self._engine().connect() as conn:
            return [_job(row) for row in conn.execute(query)]

    def mark_hanging(self, job_id: str, reason: str) -> bool:
        t = jobs_table.c
        with self._write_lock(), self._engine().begin() as conn:
            done = conn.execute(
                update(jobs_table).where(t.id == job_id, t.hanging.is_(None)).values(hanging=reason)
            )
        return bool(done.rowcount)

    def trim(self, keep: int) -> int:
        t = jobs_table.c
        with self._engine().connect() as conn:  # a read first: most rounds have nothing to delete,
            ended = conn.execute(select(func.count()).where(t.status.in_(_FINISHED))).scalar_one()
        if ended <= keep:  # and a write would wait for (and hold up) the history writer on SQLite
            return 0
        newest = (
            select(t.id).where(t.status.in_(_FINISHED)).order_by(t.finished.desc(), t.id).limit(keep)
        ).scalar_subquery()
        with self._write_lock(), self._engine().begin() as conn:
            gone = conn.execute(delete(jobs_table).where(t.status.in_(_FINISHED), t.id.not_in(newest)))
        return int(gone.rowcount or 0)

    def statements(self, dialect: str, steps: Sequence[tuple[Event, Limits, bool]]) -> list[Statement]:
        when: Callable[[datetime | None], Any] = (
            (lambda moment: micros(moment) if moment is not None else None)
            if dialect == "sqlite"
            else (lambda moment: moment)
        )
        found: list[Statement] = []
        for event, limits, checked in steps:
            record = event.record
            job_id = str(record.get("job_id"))
            name = event.name
            at = when(event.created)
            params: tuple[Any, ...]
            if name in ("jobScheduled", "jobStarted"):
                started = name == "jobStarted"
                user = record.get("user")
                params = (
                    job_id,
                    str(record.get("job_type")),
                    event.context,
                    str(user) if user is not None else event.author,
                    bool(record.get("asynchronous", True)),
                    "started" if started else "scheduled",
                    None if started else at,
                    at if started else None,
                    None,
                    record.get("progress"),
                    record.get("message"),
                    record.get("result"),
                    _seconds(limits.start_within),
                    _seconds(limits.timeout),
                    None,
                    event.id,
                )
            elif name == "jobProgress":
                params = (
                    record.get("progress"), record.get("message"), record.get("result"), event.id, job_id,
                )  # fmt: skip
            elif name == HANGING:
                params = (str(record.get("message") or "hanging"), event.id, job_id)
            else:
                status = "completed" if name == "jobCompleted" else "failed"
                params = (
                    status, at, record.get("progress"), record.get("message"), record.get("result"),
                    event.id, job_id,
                )  # fmt: skip
            # A job begun here must be new: the upsert of jobStarted would take over another
            # node's job scheduled under the same id in the moment since the tracker looked.
            sql = _sql(dialect, name, new=checked and limits.new)
            if checked:
                found.append((sql, [params], _expect(job_id, name)))
            else:
                found.append((sql, [params]))
        return found

    def committed(self, steps: Sequence[tuple[Event, Limits, bool]]) -> None:
        return None


def _expect(job_id: str, name: str) -> Callable[[int], None]:
    def check(rowcount: int) -> None:
        if rowcount != 1:
            raise StaleJob(job_id, name)

    return check


def _job(row: Any) -> Job:
    def delta(seconds: float | None) -> timedelta | None:
        return timedelta(seconds=seconds) if seconds is not None else None

    return Job(
        id=row.id,
        type=row.type,
        resource=row.resource,
        user=row.user,
        asynchronous=bool(row.asynchronous),
        status=JobStatus(row.status),
        scheduled=row.scheduled,
        started=row.started,
        finished=row.finished,
        progress=row.progress,
        message=row.message,
        result=row.result,
        start_within=delta(row.start_within),
        timeout=delta(row.timeout),
        hanging=row.hanging,
    )


class JobWrites:
    """The same-commit hook that keeps the jobs table with the job events.

    :meth:`expect` registers a step the tracker decided (its limits, and that it must change
    its row) before its event is fired; the writer's job events find it by job id and event
    name. Every other job event is applied with the default ``limits`` and changes what fits.
    """

    def __init__(self, store: JobStore, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self.watchers: list[Callable[[Sequence[Event]], None]] = []  # committed or rejected job events
        self._expected: dict[tuple[str, str], list[Limits]] = {}
        self._lock = threading.Lock()

    def expect(self, job_id: str, name: str, limits: Limits) -> None:
        with self._lock:
            self._expected.setdefault((job_id, name), []).append(limits)

    def dropped(self, job_id: str, name: str) -> None:
        """The step's event was not fired after all."""
        self._take([(job_id, name)])

    def _steps(self, events: Sequence[Event]) -> list[tuple[Event, Limits, bool]]:
        found = []
        with self._lock:
            seen: dict[tuple[str, str], int] = {}
            for event in events:
                if event.name not in JOB_EVENTS or not isinstance(event.record.get("job_id"), str):
                    continue
                key = (event.record["job_id"], event.name)
                waiting = self._expected.get(key)
                index = seen.get(key, 0)
                if waiting and index < len(waiting):
                    seen[key] = index + 1
                    found.append((event, waiting[index], True))
                else:
                    found.append((event, self.limits, False))
        return found

    def statements(self, dialect: str, events: Sequence[Event]) -> Sequence[Statement]:
        steps = self._steps(events)
        return self.store.statements(dialect, steps) if steps else []

    def committed(self, events: Sequence[Event]) -> None:
        steps = self._steps(events)
        if not steps:
            return
        self.store.committed(steps)
        self._done(steps)

    def rejected(self, events: Sequence[Event]) -> None:
        steps = self._steps(events)
        if steps:
            self._done(steps)

    def _done(self, steps: Sequence[tuple[Event, Limits, bool]]) -> None:
        self._take([(str(e.record["job_id"]), e.name) for e, _, checked in steps if checked])
        for watcher in self.watchers:
            watcher([event for event, _, _ in steps])

    def _take(self, keys: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                waiting = self._expected.get(key)
                if waiting:
                    waiting.pop(0)
                    if not waiting:
                        del self._expected[key]


def open_job_store(history: HistoryStore) -> JobStore:
    """The job store of ``history``'s database (memory for the memory store)."""
    from linkserver.history.sql import SqlHistoryStore  # SQLAlchemy's store only when used

    if isinstance(history, SqlHistoryStore):
        return SqlJobStore(lambda: history.engine, lambda: history.write_lock)
    return MemoryJobStore()
