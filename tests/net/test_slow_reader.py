"""A subscriber that stops reading loses live events and is told so with a ``gap``; it is
never closed for the keepalive pings it cannot answer while its socket is full."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

from net_helpers import Live
from websockets.sync.client import connect

from linkserver.net.protocol import Limits


def test_a_subscriber_that_never_reads_gets_a_gap_not_a_1011(make_live: Callable[..., Live]) -> None:
    live = make_live(limits=Limits(queue_size=50, ping_interval=0.2))
    device = live.new_device()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few events
    sock.connect(("127.0.0.1", int(live.url.rsplit(":", 1)[1])))
    url = f"{live.ws_url}?token={live.token('operator')}"
    with connect(url, sock=sock, max_queue=1, open_timeout=5, ping_interval=None) as ws:
        ws.send(json.dumps({"type": "subscribe", "ref": 1, "mask": device}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        fired = [
            live.server.fire(device, "measurement", [{"quantity": "t", "value": float(i)}])
            for i in range(3000)
        ]
        time.sleep(2.5)  # a dozen keepalive pings unanswered: the client is not reading
        received, gaps = [], []
        ws.send(json.dumps({"type": "ping", "ref": "after"}))
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "event":
                received.append(message["event"]["id"])
            elif message["type"] == "gap":
                gaps.append(message)
            elif message.get("ref") == "after":
                break
        while not gaps:  # the gap comes at the latest once everything queued was sent
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == "gap":
                gaps.append(message)
    assert received and gaps and received == sorted(received)
    lost = sum(g["dropped"] for g in gaps)
    assert len(received) + lost == len(fired)
    assert gaps[-1]["last_dropped_id"] <= fired[-1].id
