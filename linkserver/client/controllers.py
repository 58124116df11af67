"""Device controllers in another process: the in-process handle's methods, over a client.

Any :class:`linkserver.typing.DeviceController` runs remotely
unchanged: it gets a :class:`RemoteDeviceHandle` instead of a
``DeviceHandle`` and calls the same methods::

    from linkserver.client import Client
    from linkserver.client.controllers import run_remote_controller
    from linkserver.devices.simulator import SimulatorController

    with Client("http://plant-server:7341", token=API_TOKEN) as client:
        run_remote_controller(SimulatorController(devices=5, interval="1s"), client, name="sim")
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from linkserver.client.sync import Client
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.devices.bookkeeping import DEVICES, DeviceBookkeeping
from linkserver.typing import DeviceController


class RemoteDeviceHandle(DeviceBookkeeping):
    """What a controller may do, done over the network API.

    Same contract as ``DeviceHandle``, with two differences owed to the
    network: events are authored by the client's user (or token), not the
    controller name; and ``add_device`` of a device that exists already
    adopts it when ``adopt_existing`` (a restarted controller process finds
    its devices still there). The server knows the controller by its name
    and the client's user or token: a device another controller owns (in
    the server or remote) is neither adopted nor removed, the server
    answers DeviceOwned naming the owner.
    """

    def __init__(
        self, client: Client, controller: str, root: str = DEVICES, *, adopt_existing: bool = True
    ) -> None:
        super().__init__(controller, root)
        self.client = client
        self.adopt_existing = adopt_existing

    def add_device(self, device: str, *, template: str | None = None, description: str = "") -> str:
        """Add the device's context below ``root``; returns its path."""
        path = self.path(device)
        self.client.add_context(
            path,
            template=template,
            description=description or None,
            controller=self.controller,
            adopt=self.adopt_existing,
        )
        self._added(device)
        return path

    def remove_device(self, device: str) -> None:
        self.client.remove_context(self.path(device), controller=self.controller)
        self._removed(device)

    def fire(
        self,
        device: str,
        event: str,
        data: Any = None,
        *,
        level: Level | str | None = None,
        durable: bool = False,
    ) -> Event:
        return self.client.fire(self.path(device), event, data, level=level, durable=durable)

    def transition(self, device: str, action: str | None = None, *, to: str | None = None) -> Event:
        return self.client.transition(self.path(device), action, to=to)["event"]  # type: ignore[no-any-return]


def run_remote_controller(
    controller: DeviceController,
    client: Client,
    *,
    name: str = "remote",
    root: str = DEVICES,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    remove_devices: bool = True,
) -> RemoteDeviceHandle:
    """Start ``controller`` against the server of ``client`` and run it until told to stop.

    Runs until ``seconds`` pass, ``stop`` is set, or (in the main thread)
    SIGINT/SIGTERM arrives; then stops the controller and, with
    ``remove_devices``, removes the device contexts it added. Returns the
    handle (its ``devices`` are those still present).
    """
    handle = RemoteDeviceHandle(client, name, root)
    stopping = stop if stop is not None else threading.Event()
    restore: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            restore[sig] = signal.signal(sig, lambda *_: stopping.set())
    try:
        controller.start(handle)
        try:
            stopping.wait(seconds)
        finally:
            controller.stop()
            if remove_devices:
                handle.remove_all()
    finally:
        for sig, previous in restore.items():
            signal.signal(sig, previous)
    return handle
