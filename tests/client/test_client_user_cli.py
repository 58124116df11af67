"""``linkserver user ...``, ``login``/``logout`` and the session cache: a command is not a login."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from client_helpers import OBSERVER_PASSWORD, LiveServer

from linkserver.client.cli import main
from linkserver.history.base import HistoryQuery


def cli(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    capsys.readouterr()
    previous = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)  # not a terminal: the password is one line of it
    try:
        code = main(list(argv))
    finally:
        sys.stdin = previous
    out, err = capsys.readouterr()
    return code, out, err


def events(live: LiveServer, user: str, name: str) -> list[dict[str, Any]]:
    live.server.history.flush()
    page = live.server.history.query(
        HistoryQuery(masks=(f"users.{user}",), names=(name,), newest_first=False)
    )
    return [e.record for e in page.events]


def test_commands_reuse_one_cached_session_instead_of_logging_in_each_time(
    live: LiveServer, capsys: pytest.CaptureFixture[str], _private_session_cache: Path
) -> None:
    for _ in range(5):
        code, _, err = cli(capsys, "tree", "--url", live.url, "--depth", "1")
        assert code == 0, err
    assert cli(capsys, "history", "--url", live.url, "--limit", "1")[0] == 0
    assert len(events(live, "admin", "login")) == 1  # not 6
    assert events(live, "admin", "logout") == []
    assert stat.S_IMODE(os.stat(_private_session_cache).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(_private_session_cache.parent).st_mode) & 0o077 == 0
    [entry] = json.loads(_private_session_cache.read_text())["sessions"].values()
    assert entry["token"] not in (live.credentials["password"],)


def test_a_cached_token_the_server_forgot_is_replaced_transparently(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "tree", "--url", live.url)[0] == 0
    live.restart_http()  # a new API: every session token is unknown now
    code, out, err = cli(capsys, "tree", "--url", live.url)
    assert code == 0 and "devices" in out, err
    assert cli(capsys, "tree", "--url", live.url)[0] == 0
    assert len(events(live, "admin", "login")) == 2


def test_login_and_logout_begin_and_end_one_session_used_by_the_commands_between(
    live: LiveServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKSERVER_PASSWORD", OBSERVER_PASSWORD)
    code, out, err = cli(capsys, "login", "--url", live.url, "--user", "watcher")
    assert code == 0 and "logged in as watcher" in out, err
    monkeypatch.delenv("LINKSERVER_PASSWORD")  # the kept session needs no password
    for _ in range(3):
        assert cli(capsys, "history", "--url", live.url, "--user", "watcher")[0] == 0
    assert len(events(live, "watcher", "login")) == 1
    code, out, _ = cli(capsys, "logout", "--url", live.url, "--user", "watcher")
    assert code == 0 and "logged out" in out
    assert [e["reason"] for e in events(live, "watcher", "logout")] == ["logout"]
    code, _, err = cli(capsys, "logout", "--url", live.url, "--user", "watcher")
    assert code == 0 and "no kept session" in err
    code, _, err = cli(capsys, "history", "--url", live.url, "--user", "watcher")
    assert code == 2 and "needs a password" in err  # nothing kept any more


def test_user_commands_manage_users_at_run_time(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    url = ("--url", live.url)
    code, out, err = cli(
        capsys, "user", "add", "erin", "--grant", "devices.**=operator", *url, stdin="erin-pass-1\n"
    )
    assert code == 0 and "added erin: grants devices.**=operator" in out, err
    code, out, _ = cli(capsys, "user", "list", *url)
    assert code == 0 and "erin" in out and "devices.**=operator" in out
    code, out, _ = cli(capsys, "user", "grant", "erin", "alerts.**=observer", *url, "--json")
    assert code == 0 and json.loads(out)["grants"] == {"devices.**": "operator", "alerts.**": "observer"}
    code, out, _ = cli(capsys, "user", "revoke", "erin", "devices.**", *url)
    assert code == 0 and "grants alerts.**=observer" in out
    assert cli(capsys, "user", "passwd", "erin", *url, stdin="erin-pass-2\n")[0] == 0
    code, _, err = cli(capsys, "user", "add", "erin", *url, stdin="whatever-1\n")
    assert code == 1 and "exists already" in err
    code, _, err = cli(capsys, "user", "add", "frank", "--grant", "devices.**", *url, "--no-password")
    assert code == 2 and "MASK=LEVEL" in err
    code, _, err = cli(capsys, "user", "add", "frank", *url, stdin="short\n")
    assert code == 2 and "at least 8 characters" in err
    assert cli(capsys, "user", "remove", "erin", *url)[0] == 0
    code, _, err = cli(capsys, "user", "remove", "erin", *url)
    assert code == 1 and "no user 'erin'" in err
    kinds = [
        name
        for name in ("userAdded", "grantsChanged", "passwordChanged", "userRemoved")
        if events(live, "erin", name)
    ]
    assert kinds == ["userAdded", "grantsChanged", "passwordChanged", "userRemoved"]


def test_user_commands_need_admin(
    live: LiveServer, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("LINKSERVER_PASSWORD", OBSERVER_PASSWORD)
    code, _, err = cli(capsys, "user", "list", "--url", live.url, "--user", "watcher")
    assert code == 1 and "needs admin on root" in err
