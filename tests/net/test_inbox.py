"""The per-connection inbox: order, no lost wake-ups, an idle worker ends and comes back."""

from __future__ import annotations

import threading
import time
from typing import Any

from net_helpers import closed_with, request
from websockets.sync.client import connect

from linkserver.net.connections import ENDED
from linkserver.net.inbox import IDLE_SECONDS, Inbox


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
    first = inbox._thread  # noqa: SLF001 - what is tested
    assert first is not None
    first.join(5)  # ends by itself once idle
    assert not first.is_alive() and inbox._thread is None  # noqa: SLF001
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


def test_a_connection_ended_by_logout_is_closed_and_its_thread_ends_with_it(make_live: Any) -> None:
    live = make_live()
    device = live.new_device()
    token = live.login("operator")
    with connect(f"{live.ws_url}?token={token}", open_timeout=5) as ws:
        answer = request(ws, {"type": "subscribe", "ref": 1, "mask": device})
        assert answer["type"] == "subscribed", answer
        # The subscribe was handled by the connection's own thread, which now waits for more.
        [worker] = [t for t in threading.enumerate() if t.name == "linkserver-ws-operator"]
        with live.client(token=token) as client:
            assert client.post("/logout").status_code == 200
        assert closed_with(ws) == (ENDED, "logged out")
    # Ended with the connection, not after its idle time (IDLE_SECONDS).
    worker.join(IDLE_SECONDS / 2)
    assert not worker.is_alive()
