"""linkserver.testing.RunningServer as a user's test would use it: the docs/api.md example, the fixture."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linkserver.client.controllers import RemoteDeviceHandle
from linkserver.core.errors import PermissionDenied
from linkserver.devices.simulator import SimulatorController
from linkserver.testing import RunningServer


def test_a_running_server_with_users_controllers_and_a_restart() -> None:
    with RunningServer(
        users={"plant": {"devices.**": "admin"}, "reader": {"devices.**": "observer"}},
        controllers={"simulator": SimulatorController(devices=1, interval="50ms", seed=1)},
    ) as live:
        data_dir = live.data_dir
        assert live.server.running and (data_dir / "linkserver.runtime.json").exists()
        with live.client("plant") as client:
            handle = RemoteDeviceHandle(client, "mine")
            handle.add_device("pump1")
            event = handle.fire("pump1", "connected", {"address": "10.0.0.7"}, durable=True)
            assert event.author == "plant"
            assert client.history(mask="devices.pump1").events[0].name == "connected"
        with live.client("reader") as client, pytest.raises(PermissionDenied):
            client.fire("devices.pump1", "connected", {"address": "x"})
        with live.client() as admin:
            assert "sim1" in {c["name"] for c in admin.tree("devices")["children"]}
        with live.http("admin") as http:
            assert http.get("/me").json()["user"] == "admin"
        port = live.port
        live.restart_http()
        assert live.port == port
        with live.client() as admin:  # a new session after the restart; history kept
            assert admin.history(mask="devices.pump1").events
    assert not live.server.running and not data_dir.exists()  # a temporary data directory goes


def test_the_fixture_works_in_a_users_test_suite(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from linkserver.testing import running_server  # noqa: F401\n")
    (tmp_path / "test_mine.py").write_text(
        textwrap.dedent(
            """
            def test_it(running_server):
                with running_server.client("operator") as client:
                    path = running_server.new_device()
                    client.fire(path, "connected", {"address": "a"})
                    assert client.me()["user"] == "operator"
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
