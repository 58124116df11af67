"""A blocking WebSocket connection with no reader thread, for pipelined firing.

``websockets.sync`` reads every connection in a thread of its own and hands
each message over to the caller's thread, and writes each message with a
system call of its own. For :class:`~linkserver.client.sync_ws.FireSession`,
whose caller sends many messages and then reads their answers, that hand-over
and those calls were most of the client's time per fire. Here the caller's
thread does both ends on the websockets sans-I/O protocol (the same
handshake, framing and masking): :meth:`PipeConnection.send_many` writes
several messages in one call, and :meth:`PipeConnection.recv` reads whatever
the socket holds, keeping the messages it did not return yet
(:attr:`PipeConnection.buffered`). Pings are answered whenever the caller
reads, which a firing session does all the time.

Errors are those of ``websockets.sync``: ``InvalidStatus`` and the like from
the handshake, ``ConnectionClosed`` once the connection is closed, OSError;
and ``TimeoutError`` when the server sends nothing (or takes nothing) for
``timeout`` seconds: a server that stops answering without closing would
otherwise block the caller for ever, since nobody pings on this connection.
"""

from __future__ import annotations

import collections
import socket
import ssl
from typing import Any

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError, InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

# Under glibc's mmap threshold (128 KiB): a recv() of 256 KiB allocates by mmap and munmap
# each time, 25 us a read here against 3 us for 64 KiB (linkserver/client/feed.py).
READ_SIZE = 64 * 1024


class PipeConnection:
    """One client WebSocket, used from one thread at a time."""

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float | None = 10.0,
        timeout: float | None = 10.0,
        max_size: int | None = 1 << 20,
    ) -> None:
        """``open_timeout`` bounds the connection and handshake, ``timeout`` each later wait
        of :meth:`recv` and of a send (None: no bound)."""
        self.timeout = timeout
        uri = parse_uri(url)
        sock = socket.create_connection((uri.host, uri.port), timeout=open_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            self._sock = sock
            self.protocol = protocol = ClientProtocol(uri, max_size=max_size)
            protocol.send_request(protocol.connect())
            self._flush()
            self._messages: collections.deque[str | bytes] = collections.deque()
            self._fragments: list[bytes] = []
            self._fragment_text = False
            self._handshake()
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise

    def _handshake(self) -> None:
        protocol = self.protocol
        while True:
            data = self._sock.recv(READ_SIZE)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Response):
                    if protocol.handshake_exc is not None:
                        raise protocol.handshake_exc
                    return
                self._frame(event)  # type: ignore[arg-type]
            if not data:
                raise InvalidMessage("the server closed the connection during the handshake")
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc

    @property
    def buffered(self) -> int:
        """Messages received and not yet returned by :meth:`recv` (reading them does not block)."""
        return len(self._messages)

    def send(self, message: str) -> None:
        self.send_many((message,))

    def send_many(self, messages: Any) -> None:
        """Send each text as a message of its own, all in one write."""
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            raise self._closed()
        for message in messages:
            protocol.send_text(message.encode())
        self._flush()

    def recv(self) -> str | bytes:
        """The next message, reading from the socket only when none is buffered.

        Raises ``TimeoutError`` when nothing arrived for :attr:`timeout` seconds; what
        was read before stays buffered.
        """
        messages = self._messages
        while not messages:
            if self.protocol.state is State.CLOSED:
                raise self._closed()
            data = self._sock.recv(READ_SIZE)
            protocol = self.protocol
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                self._frame(event)  # type: ignore[arg-type]
            self._flush()  # pongs, the closing handshake
            if not data and not messages:
                raise self._closed()
        return messages.popleft()

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                data = frame.data
                self._messages.append(data.decode() if opcode is Opcode.TEXT else bytes(data))
                return
            self._fragments, self._fragment_text = [bytes(frame.data)], opcode is Opcode.TEXT
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = []
                self._messages.append(data.decode() if self._fragment_text else data)

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        if data:
            chunk = b"".join(data)
            if chunk:
                self._sock.sendall(chunk)
            elif self.protocol.close_expected():  # an empty chunk: the end of the stream
                try:
                    self._sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _closed(self) -> Exception:
        protocol = self.protocol
        if protocol.state is State.CLOSED:
            return protocol.close_exc
        return ConnectionClosedError(protocol.close_rcvd, protocol.close_sent)

    def close(self) -> None:
        """Start the closing handshake and close the socket (not waiting for the server's part)."""
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close()
                self._flush()
        except OSError:
            pass
        finally:
            self._sock.close()
