"""The batched writer: group commit, back-pressure, retries, stop."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from history_helpers import SQL_BACKENDS, EventMaker
from sqlalchemy import create_engine, make_url, text

from linkserver.core.errors import HistoryError, ServerStopped
from linkserver.core.events import Event
from linkserver.history.base import HistoryQuery
from linkserver.history.engine import CACHE_KIB
from linkserver.history.sql import SqlHistoryStore
from linkserver.history.writer import WriteQueue


def sqlite_path(store: SqlHistoryStore) -> str:
    database = make_url(str(store.url)).database
    assert database is not None
    return database


@contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """Hold SQLite's write lock from another connection, as another process could."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("COMMIT")
    finally:
        other.close()


def stored_ids(url: str) -> list[int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT id FROM events ORDER BY id")).scalars())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_many_appends_are_committed_in_few_transactions(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend, batch_size=500, flush_interval=timedelta(milliseconds=20))
    events = [make_event() for _ in range(1000)]
    futures = [store.append(event) for event in events]
    assert [future.result(timeout=30) for future in futures] == events
    stats = store.writer_stats
    assert stats.events == 1000
    assert stats.transactions <= 10, stats
    assert store.count(HistoryQuery()) == 1000


def test_a_lone_event_waits_at_most_about_the_flush_interval(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", flush_interval=timedelta(milliseconds=5))
    started = time.monotonic()
    store.append(make_event()).result(timeout=10)
    assert time.monotonic() - started < 0.5


def test_a_full_queue_blocks_the_firer_and_drops_nothing(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", batch_size=2, queue_size=5, busy_timeout=timedelta(milliseconds=20))
    events = [make_event() for _ in range(30)]
    futures: list[Future[Event]] = []

    def fire() -> None:
        for event in events:
            futures.append(store.append(event))

    with sqlite_write_lock(sqlite_path(store)):
        firer = threading.Thread(target=fire)
        firer.start()
        time.sleep(0.5)
        assert firer.is_alive(), "the firer should wait while the queue is full"
        assert len(futures) <= 5 + 2 + 1  # queued + one batch in flight + the one waiting
        assert not any(future.done() for future in futures)
    firer.join(timeout=30)
    assert not firer.is_alive()
    assert [future.result(timeout=30) for future in futures] == events
    assert stored_ids(str(store.url)) == [event.id for event in events]


def test_firers_blocked_on_a_full_queue_wait_until_the_committers_work_reaches_the_database(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    """A firer woken as soon as a batch is taken would take the GIL while the committer makes
    the batch's rows and its hooks' statements: it is woken only once the database has them."""
    store = make_store("sqlite", batch_size=2, queue_size=2, busy_timeout=timedelta(milliseconds=20))
    released: list[bool] = []
    blocked_firer_went_on = threading.Event()

    class SlowHook:
        def statements(self, dialect: str, events: Any) -> list[Any]:
            # Long enough for a woken firer to put its event and say so.
            released.append(blocked_firer_went_on.wait(0.3))
            return []

        def committed(self, events: Any) -> None:
            pass

    store.add_same_commit(SlowHook())
    events = [make_event() for _ in range(5)]
    futures: list[Future[Event]] = []

    def fire() -> None:
        for event in events:
            futures.append(store.append(event))
            if len(futures) == 3:  # the third put found the queue full, then room
                blocked_firer_went_on.set()

    with sqlite_write_lock(sqlite_path(store)):  # the first attempt fails: the retries go on
        firer = threading.Thread(target=fire)
        firer.start()
        time.sleep(0.6)
        assert blocked_firer_went_on.is_set(), "a failed attempt leaves the room it made to the firers"
    firer.join(timeout=30)
    assert [future.result(timeout=30) for future in futures] == events
    assert released[0] is False, "a blocked firer went on while the first statements were being made"


def test_a_waiting_caller_keeps_its_timeout_while_someone_else_holds_the_write_lock(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    """A durable fire's caller commits itself only when nobody else writes (an acknowledgement,
    a purge batch): it never waits for their write past its own timeout."""
    store = make_store("sqlite")
    event = make_event()
    taken, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with store.write_lock:
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=other_writer)
    holder.start()
    try:
        assert taken.wait(10)
        future = store.append(event, waiting=True)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            future.result(timeout=0.3)
        assert time.monotonic() - started < 1.5
    finally:
        release.set()
        holder.join(10)
    assert future.result(timeout=10) == event
    assert stored_ids(str(store.url)) == [event.id]


def test_a_waiting_callers_own_commit_keeps_its_timeout_while_another_process_holds_the_lock(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    """The caller commits itself (nobody in the process writes), and SQLite would wait its
    busy timeout (5 s) for the lock another connection holds: the commit waits only what is
    left of the caller's timeout, then the writer thread retries until the lock goes."""
    store = make_store("sqlite")  # busy timeout 5 s
    event, marker = make_event(), make_event()
    with sqlite_write_lock(sqlite_path(store)):
        future = store.append(event, waiting=True)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            future.result(timeout=0.3)
        assert time.monotonic() - started < 2.5, "the caller waited for SQLite's busy timeout"
        store.append(marker)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            store.flush(timeout=0.3)
        assert time.monotonic() - started < 2.5
    assert future.result(timeout=30) == event
    store.flush(timeout=30)
    assert stored_ids(str(store.url)) == [event.id, marker.id]


def test_a_waiting_callers_commit_within_its_timeout_leaves_the_busy_timeout_as_it_was(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", busy_timeout=timedelta(seconds=5))
    before = store.writer_stats.by_callers
    event = make_event()
    assert store.append(event, waiting=True).result(timeout=1.0) == event
    assert store.writer_stats.by_callers == before + 1  # the caller's own commit, within 1 s
    writer = store._writer  # noqa: SLF001 - its connection
    assert writer is not None
    with writer.own_connection() as db:
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_waiting_on_a_stored_future_hands_its_timeout_to_the_hurry_hook() -> None:
    from linkserver.history.futures import complete, new_future

    asked: list[float | None] = []

    def hurry(future: Future[Any], timeout: float | None) -> None:
        asked.append(timeout)
        if timeout is None:
            complete([(future, "done")])

    with pytest.raises(TimeoutError):
        new_future(hurry).result(timeout=0.05)
    assert new_future(hurry).result() == "done"
    assert asked == [0.05, None]


def test_a_locked_database_is_retried_and_futures_wait_for_the_commit(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", busy_timeout=timedelta(milliseconds=20))
    path = sqlite_path(store)
    events = [make_event() for _ in range(200)]
    with sqlite_write_lock(path):
        futures = [store.append(event) for event in events]
        time.sleep(0.6)
        assert not any(future.done() for future in futures), "told 'stored' before the commit"
        assert stored_ids(str(store.url)) == []
    done_order: list[int] = []
    for future in futures:
        done_order.append(future.result(timeout=30).id)
    assert store.writer_stats.retries >= 2
    assert stored_ids(str(store.url)) == [event.id for event in events] == done_order


@pytest.mark.postgres
def test_a_killed_postgres_connection_is_retried_without_loss(
    postgres_url: str, make_event: EventMaker
) -> None:
    # A name of this run's own: another test run on the same server must not kill ours.
    application = f"lstest_writer_{uuid.uuid4().hex[:12]}"
    url = f"{postgres_url}&application_name={application}"
    store = SqlHistoryStore(url, batch_size=50, flush_interval=timedelta(milliseconds=2))
    store.start()
    admin = create_engine(postgres_url)
    try:
        # Fire in small steps and kill the writer's connection every 50 ms until a kill has
        # hit a transaction in flight (a retry) and 3000 events went out: a writer that
        # commits everything before the first kill would otherwise make the test vacuous.
        events: list[Event] = []
        futures: list[Future[Event]] = []
        killed = 0
        deadline = time.monotonic() + 30
        next_kill = time.monotonic() + 0.05
        while time.monotonic() < deadline and (store.writer_stats.retries < 1 or len(events) < 3000):
            step = [make_event() for _ in range(50)]
            events.extend(step)
            futures.extend(store.append(e) for e in step)
            if time.monotonic() >= next_kill:
                next_kill = time.monotonic() + 0.05
                with admin.begin() as conn:
                    killed += len(
                        conn.execute(
                            text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = :application"
                            ),
                            {"application": application},
                        ).all()
                    )
            time.sleep(0.002)
        assert [future.result(timeout=60) for future in futures] == events
        assert killed >= 1
        assert store.writer_stats.retries >= 1
    finally:
        store.stop()
        admin.dispose()
    assert stored_ids(postgres_url) == [event.id for event in events]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_stop_commits_everything_pending(
    backend: str, database_url: Callable[[str], str], make_event: EventMaker
) -> None:
    url = database_url(backend)
    store = SqlHistoryStore(url, batch_size=10_000, flush_interval=timedelta(seconds=30))
    store.start()
    events = [make_event() for _ in range(500)]
    futures = [store.append(event) for event in events]
    time.sleep(0.05)
    assert not any(future.done() for future in futures)  # still lingering for a full batch
    store.stop()
    assert all(future.done() and future.exception() is None for future in futures)
    assert stored_ids(url) == [event.id for event in events]
    with pytest.raises(ServerStopped):
        store.append(make_event())


def test_flush_returns_once_everything_appended_is_committed(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", batch_size=10_000, flush_interval=timedelta(seconds=30))
    futures = [store.append(make_event()) for _ in range(50)]
    started = time.monotonic()
    store.flush(timeout=10)
    assert time.monotonic() - started < 5  # flush hurries the writer past its linger
    assert all(future.done() for future in futures)


def test_stop_with_a_timeout_gives_up_on_a_dead_database_and_says_so(
    make_store: Callable[..., Any], make_event: EventMaker, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store("sqlite", busy_timeout=timedelta(milliseconds=10))
    with sqlite_write_lock(sqlite_path(store)):
        futures = [store.append(make_event()) for _ in range(20)]
        store.stop(timeout=0.3)
    for future in futures:
        with pytest.raises(HistoryError, match="before the event could be stored"):
            future.result(timeout=1)
    assert "NOT stored" in caplog.text


def test_write_queue_hands_out_batches_in_order() -> None:
    queue = WriteQueue(maxsize=10, batch_size=3)
    items = [(Future(), None, False, (i,)) for i in range(7)]
    for item in items:
        queue.put(item)  # type: ignore[arg-type]
    assert queue.wait_ready(0)
    first = queue.take()
    assert queue.pending == 7
    queue.give_back(first)  # a failed attempt: back in front, in order
    assert [[item[3][0] for item in queue.take()] for _ in range(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    queue.finish(7)
    assert queue.pending == 0
    queue.close()
    assert not queue.wait_ready(0)
    with pytest.raises(ServerStopped):
        queue.put(items[0])  # type: ignore[arg-type]


def test_the_writer_lingers_for_a_dense_stream_only() -> None:
    now = [0.0]
    queue = WriteQueue(maxsize=1000, batch_size=100, clock=lambda: now[0])
    item: Any = (None, None, False, None)

    def lingered(linger: float) -> bool:
        started = time.monotonic()
        assert queue.wait_ready(linger)
        queue.finish(len(queue.take()))
        return time.monotonic() - started >= linger

    now[0] += 0.010  # 100 events/s against a 5 ms linger: no other event would join the batch
    queue.put(item)
    assert not lingered(0.005)
    for _ in range(20):  # 100 events/s, a pair now and then (a firer catching up after a pause)
        now[0] += 0.010
        queue.put(item)
        assert not lingered(0.005)
        now[0] += 0.001  # the next one came during that commit
        queue.put(item)
        assert not lingered(0.005)
        now[0] += 0.010
    now[0] += 0.040  # a slow commit: 4 queued up meanwhile, still 100 events/s
    for _ in range(4):
        queue.put(item)
    assert not lingered(0.005)
    now[0] += 0.001  # 5 events within 1 ms: 25 more are due within the linger
    for _ in range(5):
        queue.put(item)
    assert lingered(0.2)
    now[0] += 600.0  # back to sparse: one event ten minutes later
    queue.put(item)
    assert not lingered(30.0)  # would hang the test for 30 s


def test_stored_futures_behave_like_futures() -> None:
    from concurrent.futures import FIRST_COMPLETED, as_completed, wait

    from linkserver.history.futures import complete, new_future

    nobody_looked = new_future()
    complete([(nobody_looked, "a")])
    assert nobody_looked.done() and nobody_looked.result(timeout=0) == "a"
    assert not nobody_looked.cancel()

    waited = new_future()
    assert not waited.cancel()  # running: an event being written cannot be cancelled
    seen: list[object] = []
    waited.add_done_callback(lambda f: seen.append(f.result()))
    threading.Timer(0.05, complete, ([(waited, "b")],)).start()
    assert waited.result(timeout=5) == "b"
    assert seen == ["b"]

    pair = [new_future(), new_future()]
    threading.Timer(0.05, complete, ([(pair[1], "c")],)).start()
    done, _ = wait(pair, timeout=5, return_when=FIRST_COMPLETED)
    assert done == {pair[1]}
    complete([(pair[0], "d")])
    assert sorted(f.result() for f in as_completed(pair, timeout=5)) == ["c", "d"]

    failed = new_future()
    failed.set_exception(HistoryError("x"))
    with pytest.raises(HistoryError):
        failed.result(timeout=0)
    assert isinstance(failed, Future)


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_waiting_caller_commits_at_once_instead_of_after_the_linger(
    backend: str, make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(backend, flush_interval=timedelta(seconds=30))
    started = time.monotonic()
    for _ in range(20):
        event = make_event()
        assert store.append(event, checked=True, waiting=True).result(timeout=10) == event
    assert time.monotonic() - started < 5  # 20 lingers would take 10 minutes
    stats = store.writer_stats
    assert stats.events == 20 and stats.by_callers >= 1, stats
    assert stored_ids(str(store.url)) == sorted(stored_ids(str(store.url)))
    assert store.count(HistoryQuery()) == 20


def test_waiting_for_a_plain_append_hurries_the_writer_too(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", flush_interval=timedelta(seconds=30))
    futures = [store.append(make_event()) for _ in range(5)]  # the writer thread lingers for more
    started = time.monotonic()
    assert futures[-1].result(timeout=10) is not None
    assert time.monotonic() - started < 5
    assert all(future.done() for future in futures)


def test_concurrent_waiters_share_transactions(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store("sqlite", flush_interval=timedelta(seconds=30))
    per_thread, threads = 50, 8
    events = [[make_event() for _ in range(per_thread)] for _ in range(threads)]
    errors: list[BaseException] = []

    def fire(mine: list[Event]) -> None:
        try:
            for event in mine:
                assert store.append(event, waiting=True).result(timeout=30) == event
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=fire, args=(mine,)) for mine in events]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors
    stats = store.writer_stats
    assert stats.events == per_thread * threads
    assert stats.transactions < stats.events, stats  # group commit: waiters coalesced
    assert stored_ids(str(store.url)) == sorted(e.id for mine in events for e in mine)


def test_a_waiting_callers_failed_commit_goes_back_to_the_writer_in_order(
    make_store: Callable[..., Any], make_event: EventMaker
) -> None:
    store = make_store(
        "sqlite", busy_timeout=timedelta(milliseconds=20), flush_interval=timedelta(seconds=30)
    )
    events = [make_event() for _ in range(10)]
    futures = [store.append(event) for event in events[:-1]]
    results: list[Event] = []
    with sqlite_write_lock(sqlite_path(store)):
        waiter = threading.Thread(
            target=lambda: results.append(store.append(events[-1], waiting=True).result(timeout=30))
        )
        waiter.start()
        time.sleep(0.3)  # the waiter's own attempt failed (locked); the writer thread retries
        assert not results and not any(future.done() for future in futures)
    waiter.join(timeout=30)
    assert results == [events[-1]]
    assert [future.result(timeout=10) for future in futures] == events[:-1]
    assert store.writer_stats.retries >= 1
    assert stored_ids(str(store.url)) == [event.id for event in events]


def test_a_checked_event_that_cannot_be_stored_fails_alone(
    make_store: Callable[..., Any], make_event: EventMaker, caplog: pytest.LogCaptureFixture
) -> None:
    from linkserver.history.errors import UnstorableEvent

    store = make_store("sqlite")
    good = make_event()
    bad = make_event(data=({"x": float("nan")},))  # a format would have refused it
    futures = [store.append(good, checked=True), store.append(bad, checked=True)]
    store.flush(timeout=10)
    assert futures[0].result(timeout=1) == good
    with pytest.raises(UnstorableEvent):
        futures[1].result(timeout=1)
    assert f"cannot store event {bad.id}" in caplog.text
    assert stored_ids(str(store.url)) == [good.id]
    with pytest.raises(UnstorableEvent):  # unchecked: refused at once, as before
        store.append(make_event(data=({"x": float("nan")},)))


@pytest.mark.parametrize(("durability", "synchronous"), [("commit", 1), ("fsync", 2)])
def test_durability_sets_sqlite_synchronous(
    make_store: Callable[..., Any], durability: str, synchronous: int
) -> None:
    store = make_store("sqlite", durability=durability)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == synchronous
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -CACHE_KIB  # KiB, not pages


@pytest.mark.postgres
def test_fsync_durability_forces_synchronous_commit_on_postgres(postgres_url: str) -> None:
    store = SqlHistoryStore(postgres_url, durability="fsync")
    store.start()
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        store.stop()


def test_an_unknown_durability_is_refused() -> None:
    with pytest.raises(ValueError, match="durability must be one of commit, fsync"):
        SqlHistoryStore("sqlite:///x.sqlite3", durability="sometimes")


def test_completing_futures_while_others_start_waiting_never_loses_a_wake_up() -> None:
    from linkserver.history.futures import complete, new_future

    futures = [new_future() for _ in range(3000)]
    called: list[int] = []
    results: list[object] = []

    def watch() -> None:
        for index, future in enumerate(futures):
            if index % 2:
                future.add_done_callback(lambda f, index=index: called.append(index))
            else:
                results.append(future.result(timeout=10))

    watcher = threading.Thread(target=watch)
    watcher.start()
    for start in range(0, len(futures), 100):  # batches, as the writer completes them
        complete((future, start) for future in futures[start : start + 100])
    watcher.join(timeout=30)
    assert not watcher.is_alive()
    assert len(results) == 1500 and sorted(called) == list(range(1, 3000, 2))


def test_callbacks_and_exception_of_stored_futures_need_no_condition() -> None:
    from linkserver.history.futures import LAZY, complete, new_future

    before, after = new_future(), new_future()
    calls: list[tuple[str, object]] = []
    before.add_done_callback(lambda f: calls.append(("before", f.exception())))
    complete([(before, "a"), (after, "b")])
    after.add_done_callback(lambda f: calls.append(("after", f.result())))
    assert calls == [("before", None), ("after", "b")]
    if LAZY:  # a network session's answer waits by callback: no Condition per fire
        assert "_condition" not in before.__dict__ and "_condition" not in after.__dict__

    failed = new_future()
    failed.add_done_callback(lambda f: calls.append(("failed", type(f.exception()).__name__)))
    failed.set_exception(HistoryError("x"))
    assert calls[-1] == ("failed", "HistoryError")
