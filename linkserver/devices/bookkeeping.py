"""What every :class:`linkserver.typing.DeviceHandle` implementation shares.

Here rather than in the server so that the remote handle
(``linkserver.client.controllers``) shares it without importing the server.
"""

from __future__ import annotations

import logging
import threading

from linkserver.core.errors import ContextNotFound
from linkserver.core.paths import check_name, join

DEVICES = "devices"


class DeviceBookkeeping:
    """What every DeviceHandle implementation shares: device names to paths under
    ``root``, the set of devices added (thread-safe) and ``remove_all``.

    Subclasses add ``add_device``, ``remove_device`` and ``fire`` and call
    :meth:`_added` / :meth:`_removed`.
    """

    def __init__(self, controller: str, root: str = DEVICES) -> None:
        self.controller = controller
        self.root = root
        self.log = logging.getLogger(f"linkserver.controllers.{controller}")
        self._devices: set[str] = set()
        self._lock = threading.Lock()

    @property
    def devices(self) -> list[str]:
        with self._lock:
            return sorted(self._devices)

    def path(self, device: str) -> str:
        return join(self.root, check_name(device, "device name"))

    def remove_device(self, device: str) -> None:
        raise NotImplementedError  # each handle removes contexts its own way

    def remove_all(self) -> None:
        for device in self.devices:
            try:
                self.remove_device(device)
            except ContextNotFound:
                self._removed(device)

    def _added(self, device: str) -> None:
        with self._lock:
            self._devices.add(device)

    def _removed(self, device: str) -> None:
        with self._lock:
            self._devices.discard(device)
