"""The plugin shapes of linkserver.typing fit every implementation shipped."""

from __future__ import annotations

import linkserver
from linkserver.client.controllers import RemoteDeviceHandle
from linkserver.devices.simulator import SimulatorController
from linkserver.server.controllers import LocalDeviceHandle, load_controller
from linkserver.server.delivery import Gap as DeliveryGap
from linkserver.testing import CapturingListener, engine_with
from linkserver.typing import Bridge, BridgeHandle, DeviceController, DeviceHandle, Gap, Listener


def test_the_shipped_handles_and_controllers_fit_the_protocols() -> None:
    engine = engine_with({"devices": []})
    assert isinstance(LocalDeviceHandle(engine, "sim"), DeviceHandle)
    assert isinstance(RemoteDeviceHandle(None, "sim"), DeviceHandle)  # type: ignore[arg-type]
    assert isinstance(SimulatorController(devices=1), DeviceController)
    assert isinstance(
        load_controller("linkserver.devices.simulator:SimulatorController", {}), DeviceController
    )
    assert isinstance(CapturingListener(), Listener)
    engine.close()


def test_the_shipped_bridges_and_their_handle_fit_the_protocols() -> None:
    from linkserver.bridges.amqp import AmqpBridge
    from linkserver.bridges.memory import MemoryBridge, MemoryBroker
    from linkserver.server.bridge_host import BridgeHost
    from linkserver.server.engine import Engine

    assert isinstance(MemoryBridge("m", broker=MemoryBroker()), Bridge)
    assert isinstance(AmqpBridge("a"), Bridge)  # connects only at start
    engine = Engine()
    host = BridgeHost("m", MemoryBridge("m", broker=MemoryBroker()), engine, engine.history)
    assert isinstance(host, BridgeHandle)
    assert not isinstance(object(), Bridge)
    assert not isinstance(SimulatorController(devices=1), Bridge)  # start/stop but no publish
    engine.close()


def test_one_home_exported_from_the_package() -> None:
    assert DeliveryGap is Gap is linkserver.Gap
    for shape in ("Listener", "DeviceController", "DeviceHandle", "Bridge", "BridgeHandle", "Gap"):
        assert getattr(linkserver, shape) is getattr(linkserver.typing, shape)
        assert shape in linkserver.__all__
