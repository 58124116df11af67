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


def test_a_bridge_is_start_publish_stop_and_its_handle_fires() -> None:
    class Collecting:
        def __init__(self) -> None:
            self.published: list[object] = []

        def start(self, handle: BridgeHandle) -> None:
            self.handle = handle

        def publish(self, event: object) -> None:
            self.published.append(event)

        def stop(self) -> None:
            pass

    class Handle:
        name = "test"
        log = None

        def fire(self, path, event, data=None, *, level=None, durable=False):  # noqa: ANN001, ANN202
            return None

    assert isinstance(Collecting(), Bridge)
    assert isinstance(Handle(), BridgeHandle)
    assert not isinstance(object(), Bridge)
    assert not isinstance(SimulatorController(devices=1), Bridge)  # start/stop but no publish


def test_one_home_exported_from_the_package() -> None:
    assert DeliveryGap is Gap is linkserver.Gap
    for shape in ("Listener", "DeviceController", "DeviceHandle", "Bridge", "BridgeHandle", "Gap"):
        assert getattr(linkserver, shape) is getattr(linkserver.typing, shape)
        assert shape in linkserver.__all__
