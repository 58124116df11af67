"""An asyncio WebSocket connection that hands each message to a callback as it arrives.

websockets' asyncio connection puts every data frame into a queue (its
``Assembler``) and a ``recv()`` coroutine takes it out: per message a queue
put and get, a future, and the coroutine layers of ``recv``, on top of the
frame parsing. A subscription reads every message anyway, to turn it into
events at once, so :class:`FeedConnection` calls :attr:`~FeedConnection.on_message`
with each whole message (``str`` for a text message, ``bytes`` for a binary
one) from the protocol callback that parsed its last frame, in order.

Everything else is websockets': the opening and closing handshakes, pings,
pongs and the keepalive, ``send``, ``close``, ``ConnectionClosed`` and its
codes. Text that is not UTF-8 fails the connection with code 1007, as
``recv()`` does. The receiver applies flow control itself with
:meth:`~FeedConnection.pause_reading` and :meth:`~FeedConnection.resume_reading`
(websockets pauses at ``max_queue`` messages waiting; a callback has none
waiting, so it is the receiver's queue that counts).

It also cuts the byte stream into frames itself once it may (the common case:
websockets' parser, a generator stepping through ``read_exact`` calls, is a
tenth of a receiver's time): a whole text message in one unmasked frame goes
straight to :attr:`~FeedConnection.on_message`, and every other frame (pings,
pongs, close, fragments, binary, anything websockets must refuse: masked,
reserved bits, over ``max_size``) is handed to websockets whole, so that its
parser always stands at a frame's start. It begins only where websockets'
parser provably stands there (nothing buffered, no fragmented message open,
no extension, the connection open, the parser's generators the ones it knows)
and stops for good once the connection is closing; otherwise websockets
parses everything, as without it.

It reads the socket into a buffer of its own (an asyncio ``BufferedProtocol``):
a plain protocol gets a new ``bytes`` per read made by ``recv(256 KiB)``, and
an allocation that size costs glibc an ``mmap`` and ``munmap`` each time
(here 25 us a read, where ``recv_into`` a kept buffer of 16 KiB and a copy of what was
read take 3 us: one read per event per subscriber).

``on_message`` must not raise: what it cannot take it keeps for its reader
(an exception from it would end the connection in the event loop's hands).
``on_lost`` is called once the connection is closed (after websockets has
recorded why), also when it never opened fully.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_OPEN = State.OPEN
_FIN_TEXT = 0x81  # FIN, no RSV bits, opcode 1: a whole text message in one frame
READ_SIZE = 16 * 1024  # per connection (a subscription each); a bigger message takes several reads


class FeedConnection(ClientConnection, asyncio.BufferedProtocol):
    """A :class:`websockets.asyncio.client.ClientConnection` whose data frames go to
    :attr:`on_message` once it is set (before that, to ``recv()`` as usual)."""

    on_message: Callable[[str | bytes], None] | None = None
    on_lost: Callable[[], None] | None = None
    _fragments: list[bytes] | None = None
    _fragment_text = False
    _view: memoryview | None = None
    _failed = False
    _framing = False  # our own framing (see data_received)
    _partial: bytearray | None = None  # the start of a frame, not complete yet
    _needed = 0  # that frame's size, once its header is there (else 0)

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self._view
        if view is None:
            view = self._view = memoryview(bytearray(READ_SIZE))
        return view

    def buffer_updated(self, nbytes: int) -> None:
        assert self._view is not None
        self.data_received(bytes(self._view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if not self._framing:
            if self.on_message is None or not self._at_frame_start():
                super().data_received(data)
                return
            self._framing = True
        partial = self._partial
        if partial is not None:
            partial += data
            if len(partial) < self._needed:
                return  # the frame begun is not complete yet
            data, self._partial = bytes(partial), None
        self._frames(data)

    def _frames(self, data: bytes) -> None:
        """Our own framing (see the module's docstring): each whole frame in ``data``; the
        start of an incomplete one is kept for the next read."""
        protocol, end, pos, needed = self.protocol, len(data), 0, 0
        limit = protocol.max_size
        while end - pos >= 2:
            first, second = data[pos], data[pos + 1]
            length, head = second & 0x7F, 2
            if length >= 126:
                head = 4 if length == 126 else 10
                if end - pos < head:
                    break
                length = int.from_bytes(data[pos + 2 : pos + head], "big")
            masked = second & 0x80  # a server's frames are not: websockets fails the connection
            if masked:
                head += 4
            if limit is not None and length > limit:  # websockets' to refuse (1009)
                self._stop_framing(data[pos:])
                return
            stop = pos + head + length
            if stop > end:
                needed = stop - pos
                break
            handler = self.on_message
            if first == _FIN_TEXT and not masked and handler is not None and protocol.cur_size is None:
                if not self._failed:
                    self._text(data[pos + head : stop], handler)
            else:
                super().data_received(data[pos:stop])  # a whole frame of any other kind
            pos = stop
            if protocol.state is not _OPEN:  # closing: websockets' from here on
                self._stop_framing(data[pos:])
                return
        if pos < end:
            self._partial, self._needed = bytearray(data[pos:]), needed

    def _stop_framing(self, rest: bytes) -> None:
        self._framing = False
        if rest:
            super().data_received(rest)

    def _at_frame_start(self) -> bool:
        """Whether websockets' parser waits for the first byte of a frame, nothing buffered, no
        fragmented message open, the connection open and without extensions: then frames can be
        cut here and handed to it whole. Anything else, or a websockets whose parser is not
        the generator chain looked for, says no (websockets then parses everything)."""
        protocol = self.protocol
        if (
            self.response is None
            or protocol.state is not _OPEN
            or protocol.extensions
            or protocol.cur_size is not None
            or protocol.reader.buffer
        ):
            return False
        outer, inner = None, getattr(protocol, "parser", None)
        while getattr(inner, "gi_yieldfrom", None) is not None:
            outer, inner = inner, inner.gi_yieldfrom  # type: ignore[union-attr]
        return (
            getattr(inner, "__qualname__", None) == "StreamReader.at_eof"
            and getattr(outer, "__qualname__", None) == "Protocol.parse"
        )

    def process_event(self, event: object) -> None:
        handler = self.on_message
        if handler is not None and self.response is not None and type(event) is Frame:
            opcode = event.opcode
            if opcode is _TEXT or opcode is _BINARY or opcode is _CONT:
                if not self._failed:  # nothing after the message that failed the connection
                    self._data_frame(event, opcode, handler)
                return
        super().process_event(event)  # type: ignore[arg-type]  # what websockets handed us

    def _data_frame(self, frame: Frame, opcode: Opcode, handler: Callable[[str | bytes], None]) -> None:
        if opcode is _CONT:
            fragments = self._fragments
            if fragments is None:  # the protocol refuses a continuation without a start
                return
            fragments.append(frame.data)
            if not frame.fin:
                return
            self._fragments = None
            data, text = b"".join(fragments), self._fragment_text
        elif not frame.fin:
            self._fragments, self._fragment_text = [frame.data], opcode is _TEXT
            return
        else:
            data, text = frame.data, opcode is _TEXT
        if not text:
            handler(bytes(data))
            return
        self._text(data, handler)

    def _text(self, data: bytes | bytearray, handler: Callable[[str | bytes], None]) -> None:
        try:
            message = data.decode()
        except UnicodeDecodeError as exc:
            self._failed = True
            self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            try:
                self.send_data()
            except Exception:  # noqa: BLE001 - the connection is failing anyway
                self.transport.abort()
            return
        handler(message)

    def pause_reading(self) -> None:
        """Read no more from the socket until :meth:`resume_reading` (the server's sends
        then wait, and its overflow policy applies)."""
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        on_lost = self.on_lost
        if on_lost is not None:
            on_lost()
