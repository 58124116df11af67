"""A firing session whose server goes silent without closing ends with ServerTimeout after the
client's timeout, instead of blocking for ever (linkserver/client/pipe.py sends no pings).

The server here is a loopback socket that completes the WebSocket handshake (websockets'
sans-I/O server) and then answers nothing; in one variant it does not even read.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol

from linkserver.client import Client, FireSession, ServerTimeout, ServerUnavailable

READING = {"quantity": "t", "value": 1.5, "unit": "degC"}


class SilentServer:
    """Accepts one WebSocket, then stays silent: reads and discards, or does not read at all."""

    def __init__(self, reads: bool) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.reads = reads
        self.upgraded = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            protocol = ServerProtocol()
            request = None
            while request is None:
                protocol.receive_data(conn.recv(65536))
                request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
            protocol.send_response(protocol.accept(request))
            conn.sendall(b"".join(protocol.data_to_send()))
            self.upgraded.set()
            conn.settimeout(0.05)
            while not self.done.is_set():
                if not self.reads:
                    self.done.wait(0.05)
                    continue
                try:
                    if not conn.recv(65536):
                        return
                except TimeoutError:
                    pass

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture(params=[True, False], ids=["reads", "reads-nothing"])
def silent(request: pytest.FixtureRequest) -> Iterator[SilentServer]:
    server = SilentServer(reads=request.param)
    try:
        yield server
    finally:
        server.close()


def fire_into(session: FireSession, reads: bool) -> None:
    if reads:
        session.fire("devices.plc7", "measurement", [READING])
    else:  # its socket buffers fill: the sends wait, then time out
        big = [{**READING, "quantity": "x" * (1 << 20)}]
        for _ in session.fire_many([("devices.plc7", "measurement", big)] * 64, window=64):
            pass


def test_a_session_whose_server_stops_answering_times_out_and_says_how_to_wait_longer(
    silent: SilentServer,
) -> None:
    with Client(silent.url, token="t", timeout=0.5) as client, client.session() as session:
        assert silent.upgraded.wait(5)
        raised: list[BaseException] = []

        def fire() -> None:
            try:
                fire_into(session, silent.reads)
            except BaseException as exc:  # noqa: BLE001 - looked at below
                raised.append(exc)

        # In a thread, so that blocking for ever (the bug) fails the test instead of hanging it.
        firing = threading.Thread(target=fire, daemon=True)
        firing.start()
        firing.join(30)
        assert not firing.is_alive(), "the session still waits for a server that went silent"
        assert len(raised) == 1 and isinstance(raised[0], ServerTimeout), raised
        error = raised[0]
        assert isinstance(error, ServerUnavailable) and isinstance(error, TimeoutError)
        message = str(error)
        assert silent.url in message and "0.5 s" in message, message
        assert "timeout" in message and "Client(url, timeout=60)" in message, message
        if silent.reads:
            assert "sent no answer to request 1 of a firing session" in message, message
        else:
            assert "read none of the requests sent" in message, message
        # The session is over (late answers could not be told from the next ones): it says so.
        with pytest.raises(ServerTimeout):
            session.fire("devices.plc7", "measurement", [READING])


def test_an_async_session_whose_server_stops_answering_times_out_the_same_way(
    silent: SilentServer,
) -> None:
    from linkserver.client import AsyncClient

    async def main() -> None:
        async with AsyncClient(silent.url, token="t", timeout=0.5) as client:
            session = await client.session()
            assert silent.upgraded.wait(5)
            if silent.reads:
                calls = [session.fire("devices.plc7", "measurement", [READING]) for _ in range(3)]
            else:  # its socket buffers fill: a send waits, then times out
                big = [{**READING, "quantity": "x" * (1 << 20)}]
                calls = [session.fire("devices.plc7", "measurement", big) for _ in range(64)]
            raised = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
            assert raised and all(isinstance(error, ServerTimeout) for error in raised), raised
            message = str(raised[0])
            assert silent.url in message and "0.5 s" in message, message
            assert "Client(url, timeout=60)" in message, message
            if silent.reads:
                assert "sent no answer to request 1 of a firing session" in message, message
            else:
                assert "read none of the requests sent" in message, message
            with pytest.raises(ServerTimeout):  # the session is over
                await session.fire("devices.plc7", "measurement", [READING])
            await asyncio.wait_for(session.close(), 5)

    asyncio.run(main())
