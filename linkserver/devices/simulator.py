"""A simulated device controller: devices that connect, change state, measure and fail.

Useful for demos, load tests and trying definitions out. Configure it in
``config/linkserver.yaml``::

    controllers:
      - name: simulator
        class: linkserver.devices.simulator:SimulatorController
        options: {devices: 3, interval: 2s}
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

from linkserver.core.durations import parse_duration
from linkserver.core.errors import ContextNotFound, LinkServerError
from linkserver.core.statemachines import InvalidTransition
from linkserver.typing import DeviceHandle

QUANTITIES = (
    ("temperature", "degC", 20.0, 5.0),
    ("pressure", "bar", 2.0, 0.3),
    ("speed", "rpm", 1500.0, 200.0),
)


class _DeviceGone(Exception):
    """The device's context is gone: the rest of its tick is skipped."""


class SimulatorController:
    """Drives ``devices`` simulated devices named ``{prefix}{n}``.

    Every ``interval`` each connected device fires a ``measurement``; with the
    given probabilities it degrades (an ``error`` at WARNING), fails (an
    ``error`` at ERROR) or disconnects (and reconnects on a later tick). Each
    change of state goes through the device state machine
    (contexts/devices.yaml, ``handle.transition``), which fires ``stateChanged``;
    a transition the machine refuses (an operator put the device into
    maintenance) is skipped.
    """

    def __init__(
        self,
        devices: int = 3,
        interval: str | float | timedelta = "2s",
        prefix: str = "sim",
        state_change_probability: float = 0.1,
        error_probability: float = 0.02,
        disconnect_probability: float = 0.02,
        seed: int | None = None,
    ) -> None:
        if not isinstance(devices, int) or devices < 0:
            raise ValueError(f"devices must be a non-negative integer, got {devices!r}")
        self.count = devices
        self.interval = parse_duration(interval).total_seconds()
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        self.prefix = prefix
        self.p_state = state_change_probability
        self.p_error = error_probability
        self.p_disconnect = disconnect_probability
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: DeviceHandle | None = None
        self.connected: dict[str, bool] = {}
        self.ticks = 0

    @property
    def states(self) -> dict[str, bool]:
        """The devices it drives (name -> connected); their states are in the server."""
        return self.connected

    def start(self, handle: DeviceHandle) -> None:
        self._handle = handle
        for n in range(1, self.count + 1):
            name = f"{self.prefix}{n}"
            handle.add_device(name, description=f"Simulated device {n}")
            self.connected[name] = False
            try:
                self._connect(name)
            except _DeviceGone:
                pass
        self._thread = threading.Thread(target=self._run, name="linkserver-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._handle is not None:
            for name, connected in list(self.connected.items()):
                if connected:
                    try:
                        self._fire(name, "disconnected", {"reason": "stopped"})
                        self._move(name, "disconnect")
                    except _DeviceGone:
                        continue
                    self.connected[name] = False

    def tick(self) -> None:
        """One round of activity for every device (the thread calls this each interval)."""
        self.ticks += 1
        for name in list(self.connected):
            try:
                self._tick_device(name)
            except _DeviceGone:
                pass

    def _tick_device(self, name: str) -> None:
        if not self.connected[name]:
            if self._random.random() < 0.5:
                self._connect(name)
            return
        roll = self._random.random()
        if roll < self.p_disconnect:
            self._fire(name, "disconnected", {"reason": "lost"})
            self.connected[name] = False
            self._move(name, "disconnect")
            return
        if self._random.random() < self.p_state:
            code = f"W{self._random.randint(100, 199)}"
            self._fire(name, "error", {"code": code, "message": "simulated degradation"}, level="WARNING")
            self._move(name, "degrade")
        if self._random.random() < self.p_error:
            self._fire(
                name,
                "error",
                {"code": f"E{self._random.randint(100, 199)}", "message": "simulated fault"},
            )
            self._move(name, "fail")
        quantity, unit, mean, spread = self._random.choice(QUANTITIES)
        value = round(self._random.gauss(mean, spread), 3)
        self._fire(name, "measurement", [{"quantity": quantity, "value": value, "unit": unit}])

    def _connect(self, name: str) -> None:
        self._fire(name, "connected", {"address": f"sim://{name}", "firmware": "sim-1.0"})
        self.connected[name] = True
        self._move(name, "connect")

    def _move(self, name: str, action: str) -> None:
        """Request ``action`` of the device's state machine; refused ones are skipped."""
        assert self._handle is not None
        transition = getattr(self._handle, "transition", None)
        if transition is None:
            return
        try:
            transition(name, action)
        except InvalidTransition:
            pass  # e.g. in maintenance, or failed and not restarted: the machine says no
        except ContextNotFound:
            raise _DeviceGone from None
        except LinkServerError:
            self._handle.log.exception("simulated device %s could not %s", name, action)

    def _fire(
        self,
        name: str,
        event: str,
        data: dict[str, object] | list[dict[str, object]],
        level: str | None = None,
    ) -> None:
        assert self._handle is not None
        try:
            self._handle.fire(name, event, data, level=level)
        except ContextNotFound:
            # Removed under it (by an operator, or a restore): say so once, stop driving it.
            self._handle.log.warning(
                "device context of simulated device %s was removed; the simulator stops driving it", name
            )
            self.connected.pop(name, None)
            raise _DeviceGone from None
        except LinkServerError:
            self._handle.log.exception("simulated device %s could not fire %s", name, event)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()
