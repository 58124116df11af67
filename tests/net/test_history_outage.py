"""A durable fire the database cannot confirm is a 503 HistoryUnavailable, not a lost server.

The outage is real: another connection holds SQLite's exclusive lock, so the
history writer's commits fail and are retried until it is released. Each
answer comes within about ``durable_timeout`` (0.5 s here), also the first,
whose caller commits the batch itself: its commit waits for the lock no longer
than its timeout, not SQLite's busy timeout (5 s).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import pytest
from net_helpers import Live, request

from linkserver.client import Client
from linkserver.core.errors import HistoryUnavailable
from linkserver.history.base import HistoryQuery
from linkserver.net.protocol import Limits

# The durable_timeout is 0.5 s and SQLite's busy timeout 5 s: an answer in under 3 s came
# from the former (with room for a loaded machine), one waiting for the latter takes 5.5 s.
ANSWER_WITHIN = 3.0


@pytest.fixture
def locked(make_live: Callable[..., Live]) -> tuple[Live, str, sqlite3.Connection]:
    live = make_live(database_url="sqlite", limits=Limits(durable_timeout=0.5))
    device = live.new_device()  # before the outage: adding a context writes to the database too,
    live.token("operator")  # and so does a first login (users.operator)
    path = live.config.database_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")
    return live, device, blocker


def test_a_durable_fire_during_an_outage_is_503_history_unavailable(
    locked: tuple[Live, str, sqlite3.Connection],
) -> None:
    live, device, blocker = locked
    with live.client("operator") as http:
        started = time.monotonic()
        response = http.post("/fire", json={"context": device, "event": "connected", "durable": True})
        answered = time.monotonic() - started
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["type"] == "HistoryUnavailable" and "not confirmed durable" in error["message"]
        assert answered < ANSWER_WITHIN, f"the first durable fire was answered after {answered:.1f} s"
        started = time.monotonic()
        batch = http.post(
            "/fire/batch", json={"events": [{"context": device, "event": "connected"}], "durable": True}
        )
        answered = time.monotonic() - started
        assert batch.status_code == 503 and batch.json()["error"]["type"] == "HistoryUnavailable"
        assert answered < ANSWER_WITHIN, f"the durable batch was answered after {answered:.1f} s"
    with Client(live.url, token=live.token("operator")) as client:
        with pytest.raises(HistoryUnavailable) as raised:
            client.fire(device, "connected", durable=True)
        assert raised.value.status == 503  # type: ignore[attr-defined]
    with live.ws("operator") as ws:
        answer = request(
            ws, {"type": "fire", "ref": 1, "context": device, "event": "connected", "durable": True}
        )
        assert answer["error"]["type"] == "HistoryUnavailable" and answer["ref"] == 1
        assert request(ws, {"type": "ping", "ref": 2}) == {"type": "pong", "ref": 2}
    blocker.execute("ROLLBACK")
    blocker.close()
    live.server.history.flush(30)  # nothing was lost: the fired events are stored once the lock goes
    assert live.server.history.count(HistoryQuery(masks=(device,))) == 4
