"""The purge job: APScheduler configuration, runs on its interval, manual runs, logging."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.triggers.interval import IntervalTrigger
from history_helpers import EventMaker, store_all

from linkserver.history.base import HistoryQuery
from linkserver.history.memory import MemoryHistoryStore
from linkserver.server.purge import JOB_ID, PurgeScheduler

LATER = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def history() -> MemoryHistoryStore:
    store = MemoryHistoryStore()
    store.start()
    return store


def wait_for(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_the_job_runs_on_its_interval(history: MemoryHistoryStore, make_event: EventMaker) -> None:
    now = [datetime(2024, 5, 1, tzinfo=UTC)]
    store_all(history, [make_event(lifetime=timedelta(hours=1)) for _ in range(5)])
    purger = PurgeScheduler(history, interval=timedelta(milliseconds=100), batch_size=2, clock=lambda: now[0])
    purger.start()
    try:
        assert wait_for(lambda: purger.runs >= 2)
        assert history.count(HistoryQuery()) == 5  # nothing expired yet by the clock
        now[0] = LATER
        assert wait_for(lambda: history.count(HistoryQuery()) == 0)
    finally:
        purger.stop()
    runs = purger.runs
    time.sleep(0.3)
    assert purger.runs == runs  # stopped means stopped


def test_the_job_is_one_coalescing_instance_in_a_memory_store(history: MemoryHistoryStore) -> None:
    purger = PurgeScheduler(history, interval=timedelta(minutes=15), batch_size=100)
    purger.start()
    try:
        scheduler = purger.scheduler
        assert scheduler is not None
        [job] = scheduler.get_jobs()
        assert job.id == JOB_ID == "linkserver-purge"
        assert job.coalesce is True
        assert job.max_instances == 1
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval == timedelta(minutes=15)
        assert isinstance(scheduler._lookup_jobstore("default"), MemoryJobStore)
    finally:
        purger.stop()


def test_run_now_returns_and_logs_how_many_events_it_removed(
    history: MemoryHistoryStore, make_event: EventMaker, caplog: pytest.LogCaptureFixture
) -> None:
    store_all(history, [make_event(lifetime=timedelta(hours=1)) for _ in range(7)])
    store_all(history, [make_event(lifetime=timedelta(days=3650))])
    purger = PurgeScheduler(history, interval=timedelta(hours=1), batch_size=3, clock=lambda: LATER)
    with caplog.at_level(logging.INFO, logger="linkserver.history.purge"):
        assert purger.run_now() == 7
        assert purger.run_now() == 0
    messages = [r.getMessage() for r in caplog.records if r.name == "linkserver.history.purge"]
    assert messages[0].startswith("purged 7 expired events")
    assert messages[1].startswith("purged 0 expired events")
    assert history.count(HistoryQuery()) == 1


def test_a_failing_purge_is_logged_and_the_job_keeps_running(
    make_event: EventMaker, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(MemoryHistoryStore):
        calls = 0

        def purge_expired(self, now: datetime, batch_size: int = 5000) -> int:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("database on fire")
            return super().purge_expired(now, batch_size)

    store = Flaky()
    store.start()
    purger = PurgeScheduler(store, interval=timedelta(milliseconds=50), batch_size=10)
    with caplog.at_level(logging.INFO, logger="linkserver.history.purge"):
        purger.start()
        try:
            assert wait_for(lambda: store.calls >= 3)
        finally:
            purger.stop()
    assert "database on fire" in caplog.text


def test_runs_never_overlap(history: MemoryHistoryStore) -> None:
    active = []
    overlaps = []
    gate = threading.Lock()

    class Slow(MemoryHistoryStore):
        def purge_expired(self, now: datetime, batch_size: int = 5000) -> int:
            with gate:
                active.append(1)
                if len(active) > 1:
                    overlaps.append(1)
            time.sleep(0.15)
            with gate:
                active.pop()
            return 0

    store = Slow()
    store.start()
    purger = PurgeScheduler(store, interval=timedelta(milliseconds=20), batch_size=10)
    purger.start()
    try:
        manual = threading.Thread(target=purger.run_now)
        time.sleep(0.05)
        manual.start()
        time.sleep(0.5)
        manual.join()
    finally:
        purger.stop()
    assert overlaps == []


def test_bad_settings_are_refused(history: MemoryHistoryStore) -> None:
    with pytest.raises(ValueError):
        PurgeScheduler(history, interval=timedelta(0), batch_size=10)
    with pytest.raises(ValueError):
        PurgeScheduler(history, interval=timedelta(minutes=1), batch_size=0)
