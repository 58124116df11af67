"""Text frames written straight to uvicorn's transport: the same bytes uvicorn writes, and only
where they are (no extension negotiated, an open connection, a writable transport)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from net_helpers import Live, recv_json, request
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.sync.client import connect

from linkserver.net import wire


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_a_text_frame_parses_back_as_one_final_unmasked_text_frame(size: int) -> None:
    data = ("é" * (size // 2) + "x" * (size % 2)).encode()[:size]
    reader = StreamReader()
    reader.feed_data(wire.text_frame(data))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        while True:
            parser.send(None)
    except StopIteration as done:
        frame = done.value
    assert frame.opcode is Opcode.TEXT and frame.fin and bytes(frame.data) == data


@pytest.fixture
def framed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the frames written directly (the server runs in this process)."""
    sizes: list[int] = []
    original = wire.text_frame

    def counting(data: bytes) -> bytes:
        sizes.append(len(data))
        return original(data)

    monkeypatch.setattr(wire, "text_frame", counting)
    return sizes


def _fire_and_receive(live: Live, ws: Any, device: str, text: str) -> dict[str, Any]:
    answer = request(ws, {"type": "subscribe", "ref": 1, "mask": device})
    assert answer["type"] == "subscribed", answer
    with live.client("admin") as admin:
        fired = admin.post(
            "/fire", json={"context": device, "event": "error", "data": {"code": "E1", "message": text}}
        )
        assert fired.status_code == 200, fired.text
    return recv_json(ws)


def test_live_events_are_written_directly_on_a_plain_connection(make_live: Any, framed: list[int]) -> None:
    live = make_live()
    device = live.new_device()
    big = "a long message " * 6000  # past 65535 bytes: the 8-byte length
    with connect(f"{live.ws_url}?token={live.token('admin')}", open_timeout=5, compression=None) as ws:
        pushed = _fire_and_receive(live, ws, device, big)
        assert pushed["type"] == "event" and pushed["event"]["data"][0]["message"] == big
    assert any(size > 65535 for size in framed)


def test_a_compressed_connection_gets_uvicorns_own_frames(make_live: Any, framed: list[int]) -> None:
    live = make_live()
    device = live.new_device()
    # websockets' client offers permessage-deflate by default, and uvicorn accepts it.
    with connect(f"{live.ws_url}?token={live.token('admin')}", open_timeout=5) as ws:
        assert ws.protocol.extensions, "permessage-deflate was not negotiated"
        pushed = _fire_and_receive(live, ws, device, "hot " * 100)
        assert pushed["type"] == "event" and pushed["event"]["data"][0]["message"] == "hot " * 100
        assert json.loads(json.dumps(pushed)) == pushed
    assert framed == []
