"""How a client given no address finds the local server: runtime files and the user's list."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from linkserver.client import transport
from linkserver.client.discovery import LocalServer, SeveralServers, find_local_server
from linkserver.runtime import RuntimeRecord, announce, read_runtime, running_servers, withdraw

DEAD_PID = 2**22 + 12345  # above the kernel's pid_max: never a live process


@pytest.fixture(autouse=True)
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for name in ("LINKSERVER_URL", "LINKSERVER_CREDENTIALS", "LINKSERVER_DATA_DIR", "LINKSERVER_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def record(
    data_dir: Path, port: int, pid: int | None = None, started: str = "2026-01-01T00:00:00"
) -> RuntimeRecord:
    return RuntimeRecord(
        url=f"http://127.0.0.1:{port}",
        pid=os.getpid() if pid is None else pid,
        data_dir=data_dir,
        started=started,
    )


def test_nothing_running_means_the_default_address(tmp_path: Path) -> None:
    assert find_local_server() is None
    assert transport.default_url() == transport.DEFAULT_URL


def test_the_one_running_server_is_found_from_any_directory(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    announce(record(data, 4711))
    (data / "admin.credentials").write_text(
        '{"user": "admin", "password": "pw", "url": "http://127.0.0.1:4711"}'
    )
    assert find_local_server() == LocalServer(data, "http://127.0.0.1:4711")
    assert transport.default_url() == "http://127.0.0.1:4711"
    found = transport.resolve_credentials(transport.endpoint("http://localhost:4711"), None, None, None)
    assert (found.user, found.password) == ("admin", "pw")
    other = transport.resolve_credentials(transport.endpoint("http://127.0.0.1:4712"), None, None, None)
    assert other.user is None  # a password is never sent to another server
    withdraw(data)
    assert read_runtime(data) is None and running_servers() == []


def test_stale_records_are_ignored_and_removed(tmp_path: Path) -> None:
    announce(record(tmp_path / "gone", 4711, pid=DEAD_PID))
    assert running_servers() == [] and find_local_server() is None
    assert list((tmp_path / "state" / "linkserver" / "servers").iterdir()) == []


def test_several_running_servers_must_be_chosen_between(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    announce(record(tmp_path / "a", 4711))
    announce(record(tmp_path / "b", 4712, started="2026-01-02T00:00:00"))
    with pytest.raises(SeveralServers, match="2 LinkServers are running here: http://127.0.0.1:4712") as info:
        transport.default_url()
    assert "--data-dir" in str(info.value)
    monkeypatch.setenv("LINKSERVER_DATA_DIR", str(tmp_path / "a"))
    assert transport.default_url() == "http://127.0.0.1:4711"
    monkeypatch.setenv("LINKSERVER_URL", "http://127.0.0.1:9")
    assert transport.default_url() == "http://127.0.0.1:9"


def test_the_local_configuration_and_dot_data_come_before_the_users_list(tmp_path: Path) -> None:
    announce(record(tmp_path / "a", 4711))
    announce(record(tmp_path / "data", 4713), register=False)  # ./data: a server given no configuration
    assert transport.default_url() == "http://127.0.0.1:4713"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "linkserver.yaml").write_text(f"server: {{data_dir: {tmp_path / 'cfg'}}}\n")
    announce(record(tmp_path / "cfg", 4714), register=False)
    assert transport.default_url() == "http://127.0.0.1:4714"
