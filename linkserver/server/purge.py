"""The purge job: deletes expired history on an interval (APScheduler 3).

One job with a fixed id in a memory job store; ``coalesce`` folds runs missed
while the process was busy into one, ``max_instances=1`` never lets two purges
overlap. Several nodes on one database purge one at a time: each run holds
the database's ``purge`` lock (:meth:`HistoryStore.exclusive`, an advisory
lock on PostgreSQL that a killed node releases), and a node that finds it
held skips that run. Each run deletes in bounded batches (see
:meth:`HistoryStore.purge_expired`) and logs how many events it removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from linkserver.history.base import HistoryStore
from linkserver.history.sessions import KEEP_ENDED_SECONDS

log = logging.getLogger("linkserver.history.purge")

JOB_ID = "linkserver-purge"
PURGE_LOCK = "purge"  # HistoryStore.exclusive: one node of a database purges at a time


def now_utc() -> datetime:
    return datetime.now(UTC)


class PurgeScheduler:
    """Runs ``store.purge_expired(clock(), batch_size)`` every ``interval``."""

    def __init__(
        self,
        store: HistoryStore,
        *,
        interval: timedelta,
        batch_size: int,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError(f"the purge interval must be positive, got {interval}")
        if batch_size < 1:
            raise ValueError(f"the purge batch size must be positive, got {batch_size}")
        self.store = store
        self.interval = interval
        self.batch_size = batch_size
        self.clock = clock
        self.runs = 0
        self.skipped = 0  # runs left to another node that was purging
        self.removed = 0  # events purged since start, by the job and by run_now
        # (what, purge(now) -> how many): run after the events' purge (cleared alarms...)
        self.also: list[tuple[str, Callable[[datetime], int]]] = []
        # (name, interval, job): more jobs on this scheduler (the alarms' auto_clear sweep)
        self.jobs: list[tuple[str, timedelta, Callable[[], object]]] = []
        self.also.append(("login sessions ended or expired over a day ago", self._forget_sessions))
        self.also.append(("failed-login counts idle for a day", self._forget_failures))
        self._run_lock = threading.Lock()  # run_now and the job never purge at the same time
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        """Schedule the job; the first run is one interval from now."""
        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        scheduler.add_job(
            self._run_job,
            "interval",
            seconds=self.interval.total_seconds(),
            id=JOB_ID,
            name="purge expired history",
            coalesce=True,
            max_instances=1,
            replace_existing=True,
            misfire_grace_time=None,
        )
        for name, interval, job in self.jobs:
            scheduler.add_job(
                _logged(name, job),
                "interval",
                seconds=interval.total_seconds(),
                id=f"linkserver-{name}",
                name=name,
                coalesce=True,
                max_instances=1,
                replace_existing=True,
                misfire_grace_time=None,
            )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Remove the job; waits for a purge in progress to finish its current run."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    @property
    def scheduler(self) -> BackgroundScheduler | None:
        return self._scheduler

    def run_now(self) -> int:
        """Purge at once, unless another node of the same database is purging right now (then
        its purge removes the same events: this one removes nothing and says so), then the
        ``also`` purges (login sessions a day past their expiry, cleared alarms...). Returns how
        many events were removed."""
        with self._run_lock, self.store.exclusive(PURGE_LOCK) as held:
            if not held:
                self.skipped += 1
                log.info("purge skipped: another node is purging the same history now")
                return 0
            started = self.clock()
            removed = self.store.purge_expired(started, self.batch_size)
            self.runs += 1
            self.removed += removed
            for what, purge in self.also:
                try:
                    gone = purge(started)
                except Exception:  # the events' purge is done; the next run tries this again
                    log.exception("purging %s failed", what)
                else:
                    if gone:
                        log.info("purged %d %s", gone, what)
        log.info("purged %d expired events (expired at or before %s)", removed, started.isoformat())
        return removed

    def _forget_sessions(self, now: datetime) -> int:
        return self.store.sessions.forget(now - timedelta(seconds=KEEP_ENDED_SECONDS))

    def _forget_failures(self, now: datetime) -> int:
        return self.store.login_failures.forget_before(now - timedelta(seconds=KEEP_ENDED_SECONDS))

    def _run_job(self) -> None:
        try:
            self.run_now()
        except Exception:  # the next run tries again; never kill the scheduler thread
            log.exception("purging expired history failed; will retry in %s", self.interval)


def _logged(name: str, job: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # the next run tries again; never kill the scheduler thread
            log.exception("%s failed", name)

    return run
