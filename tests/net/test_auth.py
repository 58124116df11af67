"""Passwords, sessions, API tokens and the admin credentials file."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from net_helpers import Live
from websockets.exceptions import InvalidStatus

from linkserver.net.auth import (
    ADMIN_HASH_FILE,
    CREDENTIALS_FILE,
    check_password_hash,
    create_token,
    ensure_admin_credentials,
    hash_password,
    list_tokens,
    read_admin_credentials,
    revoke_token,
    verify_password,
)


@pytest.mark.real_password_cost
def test_scrypt_hashes_are_salted_and_verified() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3cret ", first)
    assert check_password_hash(first) is None


@pytest.mark.parametrize("bad", ["", "plain", "scrypt$1$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$AAAA", None])
def test_malformed_hashes_never_verify(bad: Any) -> None:
    assert not verify_password("anything", bad)
    assert check_password_hash(bad) is not None


def _login_events(live: Live, user: str, name: str) -> list[dict[str, Any]]:
    with live.client("admin") as admin:
        page = admin.get("/history", params={"mask": f"users.{user}", "event": name, "order": "oldest"})
        return [e["data"][0] for e in page.json()["events"]]


def test_login_and_logout_fire_events_in_the_users_context(make_live: Any) -> None:
    live = make_live()
    assert live.server.tree.find("users.observer") is not None  # every user has its context from the start
    response = live.client().post("/login", json={"user": "observer", "password": "observer-pw"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "observer" and body["expires"] and len(body["token"]) > 30
    with live.client(token=body["token"]) as client:
        assert client.get("/me").json()["user"] == "observer"
        assert client.post("/logout").json() == {}
        after = client.get("/me")
        assert after.status_code == 401 and after.json()["error"]["type"] == "AuthenticationFailed"
    [login] = _login_events(live, "observer", "login")
    [logout] = _login_events(live, "observer", "logout")
    assert login == {"username": "observer", "address": "127.0.0.1"}
    assert logout == {"username": "observer", "address": "127.0.0.1", "reason": "logout"}


@pytest.mark.parametrize(
    "credentials",
    [
        {"user": "observer", "password": "wrong"},
        {"user": "ghost", "password": "observer-pw"},
        {"user": "nobody_with_no_hash_is_admin", "password": ""},
    ],
)
def test_wrong_credentials_get_401_with_one_message(live: Live, credentials: dict[str, str]) -> None:
    response = live.client().post("/login", json=credentials)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"type": "AuthenticationFailed", "message": "wrong user name or password"}
    }


def test_missing_or_unknown_tokens_get_401(live: Live) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer admin.forged"},
    ):
        response = live.client().get("/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "AuthenticationFailed"


def test_websocket_without_a_valid_token_is_refused_with_401(live: Live) -> None:
    from websockets.sync.client import connect

    for suffix in ("", "?token=nonsense"):
        with pytest.raises(InvalidStatus) as refused:
            connect(live.ws_url + suffix, open_timeout=5)
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body)["error"]["type"] == "AuthenticationFailed"


def test_expired_session_tokens_are_refused_and_end_the_session(make_live: Any) -> None:
    live = make_live(session_lifetime=timedelta(milliseconds=300))
    token = live.login("operator")
    with live.client(token=token) as client:
        assert client.get("/me").status_code == 200
        time.sleep(0.4)
        response = client.get("/me")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    [logout] = _login_events(live, "operator", "logout")
    assert logout["reason"] == "timeout"


def test_expired_sessions_end_even_when_never_used_again(make_live: Any) -> None:
    live = make_live(session_lifetime=timedelta(milliseconds=200))
    live.login("operator")
    time.sleep(0.3)
    live.login("observer")  # a login sweeps expired sessions
    [logout] = _login_events(live, "operator", "logout")
    assert logout["reason"] == "timeout"


def test_api_tokens_authenticate_controllers_until_revoked(live: Live, device: str) -> None:
    tokens = live.server.history.api_tokens
    token = create_token(tokens, "plc_controller", {"devices.**": "operator"})
    assert token.startswith("plc_controller.")
    [stored] = tokens.all()
    assert token.split(".", 1)[1] not in repr(stored) + stored.digest  # only a digest is kept
    assert list_tokens(tokens)["plc_controller"]["grants"] == {"devices.**": "operator"}
    with live.client(token=token) as client:
        me = client.get("/me").json()
        assert me == {"user": "plc_controller", "grants": {"devices.**": "operator"}, "component": True}
        event = client.post("/fire", json={"context": device, "event": "connected"}).json()["event"]
        assert event["author"] == "plc_controller"
        assert client.post("/fire", json={"context": "", "event": "serverStarted"}).status_code == 404
        with live.ws("admin") as _:
            pass
        from websockets.sync.client import connect

        with connect(f"{live.ws_url}?token={token}") as ws:
            ws.send(json.dumps({"type": "ping", "ref": 1}))
            assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "ref": 1}
        assert revoke_token(tokens, "plc_controller")
        assert client.get("/me").status_code == 401
    assert not revoke_token(tokens, "plc_controller")


def test_expired_api_tokens_are_refused(live: Live) -> None:
    token = create_token(
        live.server.history.api_tokens, "short_lived", {"**": "observer"}, timedelta(milliseconds=100)
    )
    time.sleep(0.2)
    assert live.client(token=token).get("/me").status_code == 401


def test_admin_credentials_file_is_private_and_survives_restarts(make_live: Any) -> None:
    live = make_live()
    data_dir = Path(live.config.data_dir)
    path = data_dir / CREDENTIALS_FILE
    assert live.credentials_path == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data_dir / ADMIN_HASH_FILE).st_mode) == 0o600
    credentials = read_admin_credentials(data_dir)
    assert credentials is not None
    assert (
        credentials["user"] == "admin"
        and credentials["url"] == live.url
        and len(credentials["password"]) >= 24
    )
    assert live.client("admin").get("/me").json()["grants"] == {"**": "admin"}
    # A restart on another address keeps the secret and updates the address.
    again, created = ensure_admin_credentials(data_dir, "http://127.0.0.1:1")
    assert created is None and verify_password(credentials["password"], again)
    assert read_admin_credentials(data_dir) == {**credentials, "url": "http://127.0.0.1:1"}


def test_token_command_creates_lists_and_revokes_tokens(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    import io

    from net_helpers import write_config

    from linkserver.net.serve import token_command

    in_memory = str(write_config(tmp_path))
    assert token_command(["--config", in_memory, "list-tokens"]) == 1
    assert "history is in memory" in capsys.readouterr().err
    config = str(write_config(tmp_path, database_url=f"sqlite:///{tmp_path / 'history.sqlite3'}"))
    assert token_command(["--config", config, "create-token", "ctl", "--grant", "devices.**=operator"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("ctl.")
    assert token_command(["--config", config, "list-tokens"]) == 0
    assert "ctl\tdevices.**=operator\texpires never" in capsys.readouterr().out
    assert token_command(["--config", config, "create-token", "bad", "--grant", "devices.**=boss"]) == 1
    assert "boss" in capsys.readouterr().err
    assert token_command(["--config", config, "revoke-token", "ctl"]) == 0
    assert token_command(["--config", config, "revoke-token", "ctl"]) == 1
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert token_command(["hash-password"]) == 0
    assert verify_password("correct horse", capsys.readouterr().out.strip())
