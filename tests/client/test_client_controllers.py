"""Device controllers run remotely: the RemoteDeviceHandle and the simulator over the client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from client_helpers import ROOT, LiveServer

from linkserver.client import Client
from linkserver.client.controllers import RemoteDeviceHandle, run_remote_controller
from linkserver.core.errors import ContextExists, ContextNotFound, DeviceOwned, PermissionDenied
from linkserver.devices.simulator import SimulatorController
from linkserver.net.auth import create_token


def test_remote_handle_adds_fires_and_removes_devices(live: LiveServer) -> None:
    token = create_token(live.server.history.api_tokens, "plant", {"devices.**": "admin"})
    with Client(live.url, token=token) as client:
        handle = RemoteDeviceHandle(client, "plant")
        assert handle.add_device("plc7", description="PLC 7") == "devices.plc7"
        assert handle.add_device("plc7") == "devices.plc7"  # a restarted controller adopts it
        event = handle.fire("plc7", "connected", {"address": "10.0.0.7:502"}, durable=True)
        assert (event.context, event.author) == ("devices.plc7", "plant")
        assert handle.devices == ["plc7"]
        strict = RemoteDeviceHandle(client, "plant", adopt_existing=False)
        with pytest.raises(ContextExists):
            strict.add_device("plc7")
        handle.remove_all()
        assert handle.devices == []
        with pytest.raises(ContextNotFound):
            client.context("devices.plc7")


def test_remote_handle_needs_admin_on_devices(live: LiveServer) -> None:
    token = create_token(live.server.history.api_tokens, "reader", {"devices.**": "operator"})
    with Client(live.url, token=token) as client, pytest.raises(PermissionDenied):
        RemoteDeviceHandle(client, "reader").add_device("plc7")


def test_simulator_runs_remotely_and_cleans_up(live: LiveServer, client: Client) -> None:
    stop = threading.Event()
    simulator = SimulatorController(devices=3, interval="50ms", seed=1)
    with client.subscribe("devices.*", "measurement") as measurements:
        result: list[RemoteDeviceHandle] = []
        runner = threading.Thread(
            target=lambda: result.append(run_remote_controller(simulator, client, name="sim", stop=stop))
        )
        runner.start()
        seen = {measurements.get(timeout=10).context for _ in range(12)}
        stop.set()
        runner.join(timeout=10)
    assert seen == {"devices.sim1", "devices.sim2", "devices.sim3"}
    assert result and result[0].devices == []
    assert client.tree("devices")["children"] == []
    stored = client.history(mask="devices.*", event="disconnected", count=True)
    assert stored.count == 3 and {e.record["reason"] for e in stored} == {"stopped"}


def test_simulate_tool_runs_against_the_server(live: LiveServer) -> None:
    env = {**os.environ, "LINKSERVER_CREDENTIALS": str(live.credentials_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "simulate.py"),
            "--url",
            live.url,
            "--devices",
            "2",
            "--interval",
            "0.1s",
            "--seconds",
            "0.6",
            "--seed",
            "3",
            "--keep-devices",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(ROOT),
    )
    assert done.returncode == 0, done.stderr
    assert "devices left: ['sim1', 'sim2']" in done.stderr
    assert live.server.tree.find("devices.sim2") is not None
    with Client(live.url) as client:
        assert client.history(mask="devices.sim1", event="measurement", count=True).count >= 3


def test_simulate_tool_reports_an_unreachable_server(unused_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "simulate.py"),
            "--url",
            unused_url,
            "--token",
            "x",
            "--seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 3
    assert "cannot reach LinkServer" in done.stderr


def test_a_remote_controller_cannot_take_over_or_remove_an_in_process_controllers_devices(
    live: LiveServer, client: Client
) -> None:
    local = SimulatorController(devices=2, interval="50ms", seed=1)
    live.server.add_controller("simulator", local)
    try:
        token = create_token(live.server.history.api_tokens, "plant", {"devices.**": "admin"})
        with Client(live.url, token=token) as remote:
            intruder = RemoteDeviceHandle(remote, "sim")
            with pytest.raises(DeviceOwned, match="'devices.sim1' belongs to device controller 'simulator'"):
                intruder.add_device("sim1")
            assert intruder.devices == []
            with pytest.raises(DeviceOwned, match=r"simulator' \(in-process\)"):
                remote.remove_context("devices.sim1", controller="sim")
            # Nor without a controller name, nor the whole subtree, nor as the admin user.
            for caller in (remote, client):
                with pytest.raises(DeviceOwned, match="only that controller removes its devices"):
                    caller.remove_context("devices.sim2")
                with pytest.raises(DeviceOwned):
                    caller.remove_context("devices")
            # Its own devices it keeps, beside the others'.
            assert intruder.add_device("plant1") == "devices.plant1"
            intruder.remove_all()
        assert {"sim1", "sim2"} <= {c["name"] for c in client.tree("devices")["children"]}
        event = client.fire("devices.sim1", "connected", {"address": "still here"}, durable=True)
        assert event.context == "devices.sim1"
    finally:
        live.server.stop("test over")


def test_remote_controllers_own_their_devices_by_name_and_user(live: LiveServer) -> None:
    token = create_token(live.server.history.api_tokens, "plant", {"devices.**": "admin"})
    with Client(live.url, token=token) as client, Client(live.url) as admin:
        first = RemoteDeviceHandle(client, "line1")
        first.add_device("m1")
        with pytest.raises(DeviceOwned, match="device controller 'line1' \\(remote, connected as 'plant'\\)"):
            RemoteDeviceHandle(client, "line2").add_device("m1")
        with pytest.raises(DeviceOwned):  # the same name as another user is another controller
            RemoteDeviceHandle(admin, "line1").add_device("m1")
        assert RemoteDeviceHandle(client, "line1").add_device("m1") == "devices.m1"  # restarted: adopts
        first.remove_all()
        assert first.devices == []
        # Once removed, it is nobody's: any controller may add it again.
        second = RemoteDeviceHandle(admin, "line2")
        second.add_device("m1")
        second.remove_all()


def test_a_device_removed_under_the_simulator_is_dropped_with_one_warning(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    simulator = SimulatorController(devices=2, interval="20ms", seed=2)
    live.server.add_controller("simulator", simulator)
    live.server.engine.remove_context("devices.sim1")  # not through the API: nothing refuses it
    deadline = time.monotonic() + 10
    while "sim1" in simulator.states and time.monotonic() < deadline:
        time.sleep(0.02)
    ticks = simulator.ticks
    while simulator.ticks < ticks + 5:
        time.sleep(0.02)
    assert list(simulator.states) == ["sim2"]
    gone = [r for r in caplog.records if "sim1" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in gone] == [("WARNING", None)]
    live.server.stop("test over")
