"""The per-connection inbox: order, no lost wake-ups, an idle worker ends and comes back."""

from __future__ import annotations

import threading
import time

from linkserver.net.inbox import Inbox


def test_items_are_handled_in_order_by_one_thread_and_close_handles_the_rest() -> None:
    handled: list[int] = []
    threads: set[int] = set()

    def handle(item: int) -> None:
        threads.add(threading.get_ident())
        if item % 1000 == 0:
            time.sleep(0.001)  # the putter gets ahead: items wait in the deque
        handled.append(item)

    inbox: Inbox[int] = Inbox(handle, "test-inbox")
    for item in range(20_000):
        inbox.put(item)
        if item % 3000 == 0:
            time.sleep(0.002)  # let the worker catch up and fall asleep now and then
    worker = inbox.close()
    assert worker is not None
    worker.join(10)
    assert not worker.is_alive()
    assert handled == list(range(20_000))
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_an_idle_worker_ends_and_the_next_item_starts_another() -> None:
    handled: list[str] = []
    done = threading.Event()

    def handle(item: str) -> None:
        handled.append(item)
        done.set()

    inbox: Inbox[str] = Inbox(handle, "test-inbox", idle=0.05)
    inbox.put("first")
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while inbox._thread is not None and time.monotonic() < deadline:  # noqa: SLF001 - what is tested
        time.sleep(0.01)
    assert inbox._thread is None  # noqa: SLF001
    done.clear()
    inbox.put("second")
    assert done.wait(5)
    worker = inbox.close()
    if worker is not None:
        worker.join(5)
    assert handled == ["first", "second"]


def test_a_failing_handler_does_not_stop_the_items_after_it() -> None:
    handled: list[int] = []

    def handle(item: int) -> None:
        if item == 1:
            raise RuntimeError("a bug")
        handled.append(item)

    inbox: Inbox[int] = Inbox(handle, "test-inbox")
    for item in range(3):
        inbox.put(item)
    worker = inbox.close()
    assert worker is not None
    worker.join(5)
    assert handled == [0, 2]


def test_close_without_items_has_no_worker_to_join() -> None:
    inbox: Inbox[int] = Inbox(lambda item: None, "test-inbox")
    assert inbox.close() is None
