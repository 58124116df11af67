"""Pusher: eager sends from one loop wake-up, falling back to a task when a send must wait."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from linkserver.net.push import Pusher, start


class FakeSession:
    """The part of Session a Pusher uses: an outbox of texts and (no) replay."""

    def __init__(self) -> None:
        self.outbox: list[str] = []
        self.wants_pump = False
        self.pumped = 0
        self.closed = False
        self.principal = type("P", (), {"name": "alice"})()

    @property
    def pending(self) -> bool:
        return bool(self.outbox)

    def take_text(self, limit: int) -> list[str]:
        taken, self.outbox = self.outbox[:limit], self.outbox[limit:]
        return taken

    def pump(self) -> None:
        self.pumped += 1
        self.wants_pump = False
        self.outbox.append("replayed")

    def close(self) -> None:
        self.closed = True


class Transport:
    """An ASGI send that completes at once while writable, and waits while not."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.waits = 0

    async def send(self, message: dict[str, Any]) -> None:
        if not self.writable.is_set():
            self.waits += 1
        await self.writable.wait()
        if message["type"] == "websocket.close":
            self.sent.append("<close>")
            return
        self.sent.append(message["text"])


async def off_loop(work: Any) -> Any:
    return await asyncio.to_thread(work)


def test_start_finishes_a_coroutine_that_never_waits_and_hands_back_one_that_does() -> None:
    async def main() -> None:
        done: list[str] = []

        async def quick() -> None:
            done.append("quick")

        assert start(quick()) is None and done == ["quick"]
        gate = asyncio.Event()

        async def slow() -> None:
            done.append("before")
            await gate.wait()
            await asyncio.sleep(0)
            done.append("after")

        rest = start(slow())
        assert rest is not None and done == ["quick", "before"]
        asyncio.get_running_loop().call_later(0.01, gate.set)
        await rest
        assert done == ["quick", "before", "after"]

        async def failing() -> None:
            await asyncio.sleep(0)
            raise ValueError("late")

        rest = start(failing())
        assert rest is not None
        with pytest.raises(ValueError, match="late"):
            await rest

    asyncio.run(main())


def test_a_waiting_send_moves_the_rest_to_a_task_in_order() -> None:
    async def main() -> None:
        session, transport = FakeSession(), Transport()
        pusher = Pusher(session, transport.send, off_loop)  # type: ignore[arg-type]
        session.outbox += ["a", "b"]
        pusher.set()
        assert transport.sent == ["a", "b"] and pusher.task is None  # eager: no task at all
        transport.writable.clear()  # flow control: the client reads slowly
        session.outbox += ["c", "d"]
        pusher.set()
        assert pusher.task is not None and transport.sent == ["a", "b"]
        session.outbox += ["e"]
        pusher.set()  # busy: the task takes it
        transport.writable.set()
        while pusher.task is not None:
            await asyncio.sleep(0.001)
        assert transport.sent == ["a", "b", "c", "d", "e"] and transport.waits == 1
        session.wants_pump = True
        pusher.set()  # a replay step runs off the loop, then what it queued goes out
        while pusher.task is not None or session.outbox:
            await asyncio.sleep(0.001)
        assert session.pumped == 1 and transport.sent[-1] == "replayed"
        pusher.close()
        session.outbox.append("late")
        pusher.set()
        assert transport.sent[-1] == "replayed"

    asyncio.run(main())


def test_a_failing_session_closes_the_connection_with_1011() -> None:
    async def main() -> None:
        session, transport = FakeSession(), Transport()

        def broken(limit: int) -> list[str]:
            raise KeyError("bug")

        session.take_text = broken  # type: ignore[method-assign]
        pusher = Pusher(session, transport.send, off_loop)  # type: ignore[arg-type]
        pusher.set()
        await asyncio.sleep(0.01)
        assert pusher.closed and session.closed and transport.sent == ["<close>"]

    asyncio.run(main())
