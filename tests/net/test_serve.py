"""``linkserver serve`` as a real process: start, serve, stop on signals, refuse to start when it must."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from net_helpers import REPO, TLS, write_config

from linkserver.history.base import HistoryQuery
from linkserver.history.sql import SqlHistoryStore
from linkserver.loading.check import check_files
from linkserver.net.auth import read_admin_credentials


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "linkserver.net.serve", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(process: subprocess.Popen[str], url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.communicate()}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1, verify=TLS).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the server did not answer within {timeout}s: {process.communicate()}")


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err


@pytest.fixture
def sqlite_config(tmp_path: Path) -> tuple[Path, str, Path]:
    port = free_port()
    data = tmp_path / "data"
    config = write_config(
        tmp_path, listen=f"127.0.0.1:{port}", database_url=f"sqlite:///{data / 'history.sqlite3'}"
    )
    return config, f"http://127.0.0.1:{port}", data


def test_serves_until_sigterm_then_flushes_history_and_exits_0(sqlite_config: tuple[Path, str, Path]) -> None:
    from websockets.sync.client import connect

    config, url, data = sqlite_config
    process = start(config)
    try:
        wait_until_serving(process, url)
        credentials = read_admin_credentials(data)
        assert credentials is not None and credentials["url"] == url
        with httpx.Client(base_url=f"{url}/api/v1", verify=TLS) as client:
            token = client.post("/login", json={"user": "admin", "password": credentials["password"]}).json()[
                "token"
            ]
            headers = {"Authorization": f"Bearer {token}"}
            client.post("/contexts", json={"path": "devices.served"}, headers=headers)
            fired = [
                client.post(
                    "/fire", headers=headers, json={"context": "devices.served", "event": "connected"}
                ).json()["event"]["id"]
                for _ in range(20)
            ]
        ws = connect(f"{url.replace('http', 'ws')}/api/v1/ws?token={token}")
        ws.send(json.dumps({"type": "subscribe", "ref": 1, "mask": "**"}))
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        started = time.monotonic()
        code, err = stop(process, signal.SIGTERM)
        assert time.monotonic() - started < 10
        ws.close()
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert f"listening on {url}" in err and str(data) in err
    assert "admin credentials" in err and str(data / "admin.credentials") in err
    assert "SIGTERM received" in err
    store = SqlHistoryStore(f"sqlite:///{data / 'history.sqlite3'}")
    store.start()
    try:
        stored = store.query(HistoryQuery(masks=("devices.served",), newest_first=False, limit=100)).events
        assert [e.id for e in stored] == fired
        assert [e.name for e in store.query(HistoryQuery(masks=("",), limit=1)).events] == ["serverStopping"]
        # Sessions are kept in history, shared by every node: a stopping node ends none.
        assert store.query(HistoryQuery(masks=("users.admin",), names=("logout",))).events == ()
        [kept] = [s for s in store.sessions.changes(0) if s.user == "admin"]
        assert kept.ended is None
    finally:
        store.stop()


def test_a_second_server_on_the_same_data_directory_refuses_to_start(
    sqlite_config: tuple[Path, str, Path], tmp_path: Path
) -> None:
    config, url, data = sqlite_config
    first = start(config)
    try:
        wait_until_serving(first, url)
        other = tmp_path / "other"
        other.mkdir()
        second_config = other / "linkserver.yaml"
        second_config.write_text(config.read_text().replace(url.rsplit(":", 1)[1], str(free_port())))
        second = subprocess.run(
            [sys.executable, "-m", "linkserver.net.serve", "--config", str(second_config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert "already running" in second.stderr and str(data) in second.stderr
        assert httpx.get(f"{url}/openapi.json", verify=TLS).status_code == 200  # the first one is unharmed
        code, err = stop(first, signal.SIGINT)
        assert code == 0, err
    finally:
        if first.poll() is None:
            first.kill()


def test_invalid_yaml_is_refused_with_the_same_errors_as_check(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="delivery:\n  queue_size: lots\nbogus: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "linkserver.net.serve", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    problems = check_files([config])
    assert len(problems) == 2
    for problem in problems:
        assert problem in result.stderr
        assert problem.startswith(f"{config.name}:") or problem.startswith(str(config))
    assert "did not start" in result.stderr
    assert not (tmp_path / "data" / "admin.credentials").exists()


def test_a_port_in_use_is_refused_and_releases_the_data_directory(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, listen=f"127.0.0.1:{port}")
        result: Any = subprocess.run(
            [sys.executable, "-m", "linkserver.net.serve", "--config", str(config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "data" / "admin.credentials").exists()


def test_listen_and_data_dir_from_the_environment_replace_the_configuration(tmp_path: Path) -> None:
    config = write_config(tmp_path, listen="127.0.0.1:1", database_url="memory://")
    data = tmp_path / "elsewhere"
    env = {**os.environ, "LINKSERVER_DATA_DIR": str(data), "LINKSERVER_LISTEN": "127.0.0.1:0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "linkserver", "serve", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        runtime = data / "linkserver.runtime.json"
        deadline = time.monotonic() + 20
        while not runtime.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        record = json.loads(runtime.read_text())
        assert record["pid"] == process.pid and record["data_dir"] == str(data)
        wait_until_serving(process, record["url"])
        assert read_admin_credentials(data)["url"] == record["url"]  # type: ignore[index]
        # A tool anywhere finds it through the same variable, or through the user's list.
        for extra in ({"LINKSERVER_DATA_DIR": str(data)}, {}):
            found = subprocess.run(
                [sys.executable, "-m", "linkserver", "tree", "--depth", "1", "--json"],
                cwd=REPO / "docs",
                env={**{k: v for k, v in os.environ.items() if not k.startswith("LINKSERVER_")}, **extra},
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert found.returncode == 0, found.stderr
            assert "devices" in [c["name"] for c in json.loads(found.stdout)["children"]]
        code, err = stop(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err
    assert not runtime.exists()


def test_a_bad_listen_option_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "linkserver", "serve", "--listen", "nowhere"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "'nowhere' is not host:port such as 127.0.0.1:7341" in result.stderr
