"""FeedConnection: websockets' asyncio client connection handing each message to a callback,
against a websockets server on loopback that sends what a test needs (fragments, binary,
text that is not UTF-8); and a subscription's flow control against a live LinkServer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from client_helpers import LiveServer
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from linkserver.client import AsyncClient
from linkserver.client.aio import HIGH, LOW
from linkserver.client.feed import READ_SIZE, FeedConnection


async def feed_from(
    send: Callable[[ServerConnection], Awaitable[None]],
    max_size: int = 1 << 20,
    compression: str | None = None,
) -> tuple[list[Any], int, int]:
    """What a FeedConnection's callback got from a server running ``send``; the code of the
    close frame the client sent and how often on_lost was called."""
    got: list[Any] = []
    lost: list[None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the client is listening
        await send(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = await connect(
            f"ws://127.0.0.1:{port}",
            create_connection=FeedConnection,
            max_size=max_size,
            compression=compression,
        )
        assert isinstance(client, FeedConnection)
        client.on_message, client.on_lost = got.append, lambda: lost.append(None)
        await client.send("go")
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.protocol.close_sent is not None
        return got, client.protocol.close_sent.code, len(lost)


BIG = "é" * (READ_SIZE * 3)  # several reads; over 65535 bytes: a 64-bit length


async def all_kinds(ws: ServerConnection) -> None:
    """Every kind of frame, control frames between the parts of a fragmented message."""
    await ws.send("one")
    await ws.send(["tw", "o"])  # a fragmented text message
    await ws.send(b"\x00\xff")
    await ws.ping()
    await ws.send([b"\x01", b"\x02"])
    await ws.send("x" * 200)  # a 16-bit length
    await ws.send(BIG)
    await ws.send("")
    await ws.close()


EXPECTED = ["one", "two", b"\x00\xff", b"\x01\x02", "x" * 200, BIG, ""]


@pytest.mark.parametrize(
    ("read_size", "compression"),
    [(READ_SIZE, None), (1, None), (3, None), (7, None), (READ_SIZE, "deflate"), (5, "deflate")],
)
def test_each_message_goes_to_the_callback_in_order_whole(
    read_size: int, compression: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads of a few bytes cut every frame and header at every place; with permessage-deflate
    websockets' parser does it all."""
    monkeypatch.setattr("linkserver.client.feed.READ_SIZE", read_size)
    framed: list[int] = []
    frames = FeedConnection._frames

    def counted(self: FeedConnection, data: bytes) -> None:
        framed.append(len(data))
        frames(self, data)

    monkeypatch.setattr(FeedConnection, "_frames", counted)
    got, code, lost = asyncio.run(feed_from(all_kinds, compression=compression))
    assert got == EXPECTED
    assert (code, lost) == (1000, 1)
    assert bool(framed) is (compression is None)  # ours, else websockets' parser alone


def test_frames_websockets_must_refuse_fail_the_connection_as_it_does() -> None:
    async def masked(ws: ServerConnection) -> None:
        await ws.send("fine")
        ws.transport.write(b"\x81\x82abcd" + bytes(a ^ b for a, b in zip(b"hi", b"ab", strict=True)))
        await ws.send("never handed over")

    async def reserved_bit(ws: ServerConnection) -> None:
        await ws.send("fine")
        ws.transport.write(b"\xc1\x02hi")
        await ws.send("never handed over")

    async def too_big(ws: ServerConnection) -> None:
        await ws.send("fine")
        await ws.send("x" * 2000)
        await ws.send("never handed over")

    assert asyncio.run(feed_from(masked))[:2] == (["fine"], 1002)
    assert asyncio.run(feed_from(reserved_bit))[:2] == (["fine"], 1002)
    assert asyncio.run(feed_from(too_big, max_size=1000))[:2] == (["fine"], 1009)


def test_text_that_is_not_utf8_fails_the_connection_as_recv_does() -> None:
    async def send(ws: ServerConnection) -> None:
        await ws.send("fine")
        await ws.send(b"\xff\xfe", text=True)
        await ws.send("never handed over")

    got, code, lost = asyncio.run(feed_from(send))
    assert (got, code, lost) == (["fine"], 1007, 1)


def test_a_subscription_stops_reading_while_its_reader_is_behind(live: LiveServer) -> None:
    async def main() -> None:
        async with AsyncClient(live.url) as client:
            plc = await client.add_context("devices.plc7")
            async with await client.subscribe(plc, "measurement") as subscription:
                total = 3 * HIGH
                async with await client.session() as session:
                    for start in range(0, total, 256):
                        await session.fire_batch(
                            [
                                (plc, "measurement", [{"quantity": "t", "value": i, "unit": "degC"}])
                                for i in range(start, start + 256)
                            ]
                        )
                ws = subscription._ws
                assert ws is not None
                for _ in range(100):
                    if len(subscription._items) >= HIGH:
                        break
                    await asyncio.sleep(0.05)
                assert HIGH <= len(subscription._items) < total
                assert not ws.transport.is_reading()
                stream = aiter(subscription)
                got = [(await asyncio.wait_for(anext(stream), 5)).data[0]["value"] for _ in range(total)]
                assert got == list(range(total))
                assert ws.transport.is_reading() and len(subscription._items) <= LOW

    asyncio.run(main())


def test_a_second_task_waiting_on_one_subscription_is_refused(live: LiveServer) -> None:
    async def main() -> None:
        async with AsyncClient(live.url) as client:
            plc = await client.add_context("devices.plc7")
            async with await client.subscribe(plc, "measurement") as subscription:
                stream = aiter(subscription)
                first = asyncio.ensure_future(anext(stream))
                await asyncio.sleep(0.05)
                with pytest.raises(RuntimeError, match="another task"):
                    await anext(stream)
                fired = await client.fire(plc, "measurement", [{"quantity": "t", "value": 1, "unit": "degC"}])
                assert (await asyncio.wait_for(first, 5)).id == fired.id

    asyncio.run(main())
