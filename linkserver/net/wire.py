"""Text frames written straight to uvicorn's transport, for live fan-out.

An ASGI ``websocket.send`` through uvicorn's websockets-sansio protocol
costs a coroutine, an ``asyncio.Event`` check, a ``websockets`` Frame object
and its serialisation, and a join, for every message; one event to 100
subscribers pays that 100 times on the event loop's one thread, in front of
the last subscriber. A server-to-client text frame without extensions is
two to ten header bytes and the UTF-8 text (RFC 6455 section 5.2: no mask),
so :func:`direct_writer` writes exactly those bytes to the transport itself.

It does so only where that is the same as what uvicorn would write: the
protocol is uvicorn's ``WebSocketsSansIOProtocol`` with the attributes it
reads, the handshake is done, no extension (permessage-deflate) was
negotiated, the connection is open, nobody sent a close, and the transport
is not paused for flow control. Otherwise the writer answers False and the
caller uses the ASGI send, which waits, raises or compresses as uvicorn
does. The caller never writes directly while an ASGI send of the same
connection is still waiting (:class:`linkserver.net.push.Pusher` keeps
order so), so the bytes on the wire stay in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TextWriter = Callable[[str], bool]


class Wire(str):
    """A message's text that keeps its WebSocket frame once written directly
    (:func:`direct_writer`): one event's message to every
    session with the same subscription id is framed once, not once per session."""

    frame: bytes | None = None


_NEEDED = ("transport", "conn", "writable", "disconnected", "close_sent", "handshake_complete")


def direct_writer(send: Callable[..., Any]) -> TextWriter | None:
    """A function writing one text message straight to ``send``'s connection (True), or
    answering False when only the ASGI send may; None if ``send`` is not uvicorn's."""
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from websockets.protocol import State
    except ImportError:  # an older uvicorn: the ASGI send it is
        return None
    protocol = getattr(send, "__self__", None)
    if not isinstance(protocol, WebSocketsSansIOProtocol) or not all(
        hasattr(protocol, name) for name in _NEEDED
    ):
        return None
    conn = protocol.conn
    if not hasattr(conn, "state") or not hasattr(conn, "extensions"):
        return None
    opened = State.OPEN

    def write(text: str) -> bool:
        frame: bytes | None
        if (
            protocol.disconnected
            or protocol.close_sent
            or not protocol.handshake_complete
            or conn.state is not opened
            or conn.extensions
            or not protocol.writable.is_set()
        ):
            return False
        if type(text) is Wire:  # the same message to many sessions: framed once
            frame = text.frame
            if frame is None:
                frame = text.frame = text_frame(text.encode())
        else:
            frame = text_frame(text.encode())
        protocol.transport.write(frame)
        return True

    return write


def text_frame(data: bytes) -> bytes:
    """One final, unmasked text frame carrying ``data`` (RFC 6455 section 5.2)."""
    size = len(data)
    if size < 126:
        return b"\x81" + size.to_bytes(1, "big") + data
    if size < 1 << 16:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data
