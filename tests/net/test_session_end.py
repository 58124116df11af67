"""Sessions that really end (WebSockets close within a second), throttled guessing, the Origin check."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from net_helpers import TLS, Live, closed_with, request
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from linkserver.net.auth import create_token, revoke_token
from linkserver.net.connections import ENDED

THROTTLED = "auth:\n  throttle: {user_failures: 3, address_failures: 6, token_failures: 4, first_delay: 2s}\n"


def _subscribe(ws: Any, mask: str) -> None:
    answer = request(ws, {"type": "subscribe", "ref": 1, "mask": mask})
    assert answer["type"] == "subscribed", answer


def test_logout_closes_the_sessions_websockets_and_nothing_more_arrives(live: Live, device: str) -> None:
    token = live.login("operator")
    with connect(f"{live.ws_url}?token={token}", open_timeout=5) as ws:
        _subscribe(ws, device)
        with live.client("admin") as admin:
            admin.post("/fire", json={"context": device, "event": "connected"})
        assert json.loads(ws.recv(timeout=5))["type"] == "event"
        with live.client(token=token) as client:
            assert client.post("/logout").status_code == 200
        started = time.monotonic()
        code, reason = closed_with(ws)
        assert time.monotonic() - started < 1.0
        assert (code, reason) == (ENDED, "logged out")
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{live.ws_url}?token={token}", open_timeout=5)
    assert refused.value.response.status_code == 401


def test_a_revoked_api_token_closes_its_websocket_within_a_second(live: Live, device: str) -> None:
    tokens = live.server.history.api_tokens
    token = create_token(tokens, "revoked_soon", {"devices.**": "operator"})
    with connect(f"{live.ws_url}?token={token}", open_timeout=5) as ws:
        _subscribe(ws, device)
        fired = request(ws, {"type": "fire", "ref": 2, "context": device, "event": "connected"})
        assert fired["type"] in ("fired", "event")
        assert revoke_token(tokens, "revoked_soon")  # what 'linkserver token revoke-token' does
        started = time.monotonic()
        code, reason = closed_with(ws)
        assert time.monotonic() - started < 1.0
        assert code == ENDED and "no longer valid" in reason


def test_changed_grants_of_an_api_token_close_its_websocket(live: Live, device: str) -> None:
    token = create_token(live.server.history.api_tokens, "regranted", {"devices.**": "operator"})
    with connect(f"{live.ws_url}?token={token}", open_timeout=5) as ws:
        _subscribe(ws, device)
        create_token(
            live.server.history.api_tokens, "regranted", {"alerts.**": "operator"}
        )  # replaced: new secret
        code, _ = closed_with(ws)
    assert code == ENDED


def test_an_expired_session_closes_its_websocket_and_fires_logout(make_live: Any) -> None:
    live = make_live(session_lifetime=timedelta(milliseconds=600))
    with live.ws("observer") as ws:
        assert request(ws, {"type": "ping", "ref": 1})["type"] == "pong"
        code, reason = closed_with(ws, timeout=3)
    assert (code, reason) == (ENDED, "the session expired")
    with live.client("admin") as admin:
        events = admin.get("/history", params={"mask": "users.observer", "event": "logout"}).json()["events"]
    assert [e["data"][0]["reason"] for e in events] == ["timeout"]


def _login(live: Live, user: str, password: str, address_port: int | None = None) -> httpx.Response:
    with httpx.Client(base_url=f"{live.url}/api/v1", verify=TLS, timeout=10) as client:
        return client.post("/login", json={"user": user, "password": password})


def test_failed_logins_of_one_user_back_off_then_answer_429_with_retry_after(make_live: Any) -> None:
    live = make_live(extra=THROTTLED)
    for _ in range(2):
        assert _login(live, "operator", "wrong").status_code == 401
    third = _login(live, "operator", "wrong")
    assert third.status_code == 401  # the third failure starts the back-off
    refused = _login(live, "operator", "operator-pw")  # even the right password waits
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "TooManyAttempts"
    assert refused.headers["retry-after"] == "2"
    assert _login(live, "observer", "observer-pw").status_code == 200  # other users are not locked
    time.sleep(2.1)
    assert _login(live, "operator", "wrong").status_code == 401
    doubled = _login(live, "operator", "operator-pw")
    assert doubled.status_code == 429 and doubled.headers["retry-after"] == "4"


def test_failed_logins_from_one_address_back_off_across_user_names(make_live: Any) -> None:
    live = make_live(extra=THROTTLED)
    for index in range(6):
        assert _login(live, f"guess{index}", "wrong").status_code == 401
    refused = _login(live, "observer", "observer-pw")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_guessed_bearer_tokens_are_throttled_and_valid_tokens_still_pass(make_live: Any) -> None:
    live = make_live(extra=THROTTLED)
    token = live.login("observer")
    statuses = [live.client(token=f"guess{i}").get("/me").status_code for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{live.ws_url}?token=guess-again", open_timeout=5)
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["retry-after"]
    assert live.client(token=token).get("/me").status_code == 200


def test_websocket_origin_must_be_the_servers_own_unless_configured(make_live: Any) -> None:
    live = make_live(extra='auth:\n  allowed_origins: ["https://ops.example.com"]\n')
    token = live.login("observer")
    url = f"{live.ws_url}?token={token}"
    host = live.url.removeprefix("http://")
    for origin in (None, f"http://{host}", "https://ops.example.com"):
        headers = {"Origin": origin} if origin else None
        with connect(url, open_timeout=5, additional_headers=headers) as ws:
            assert request(ws, {"type": "ping", "ref": 1})["type"] == "pong", origin
    for origin in ("http://evil.example", "null", f"http://{host.split(':')[0]}:1"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=5, additional_headers={"Origin": origin})
        assert refused.value.response.status_code == 403, origin
        assert "allowed_origins" in json.loads(refused.value.response.body)["error"]["message"]
