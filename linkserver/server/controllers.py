"""Device controllers: plugins that drive devices and fire events in their contexts.

A controller is anything with ``start(handle)`` and ``stop()``; it is loaded
from a ``module:attribute`` path in the configuration and built with the
configured options as keyword arguments.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from linkserver.core.errors import ContextExists, ContextNotFound, LinkServerError
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.core.paths import check_name, join

if TYPE_CHECKING:
    from linkserver.server.engine import Engine

DEVICES = "devices"


class ControllerError(LinkServerError, RuntimeError):
    """A device controller could not be loaded or started."""


@runtime_checkable
class DeviceHandle(Protocol):
    """What a controller gets: device contexts under ``root`` to manage and fire in.

    In-process controllers get a :class:`LocalDeviceHandle`; remote ones a
    ``linkserver.client.controllers.RemoteDeviceHandle``; both fit this shape.
    """

    controller: str
    root: str
    log: logging.Logger

    @property
    def devices(self) -> list[str]:
        """The names of the devices this handle added and has not removed."""

    def add_device(self, device: str, *, template: str | None = None, description: str = "") -> str:
        """Add ``root.device``; returns its path."""

    def remove_device(self, device: str) -> None:
        """Remove the device's context with everything below it."""

    def fire(
        self,
        device: str,
        event: str,
        data: Any = None,
        *,
        level: Level | str | None = None,
        durable: bool = False,
    ) -> Event:
        """Fire ``event`` in the device's context."""

    def remove_all(self) -> None:
        """Remove every device this handle added (at shutdown)."""


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


class LocalDeviceHandle(DeviceBookkeeping):
    """The in-process :class:`DeviceHandle`: works directly on the engine."""

    def __init__(self, engine: Engine, controller: str, root: str = DEVICES) -> None:
        super().__init__(controller, root)
        self._engine = engine

    def add_device(self, device: str, *, template: str | None = None, description: str = "") -> str:
        """Add the device's context (with the ``devices`` child definitions unless a template is named).

        A context that exists already is adopted: the run-time tree survives a
        crash, so a controller starting again finds its devices still there.
        """
        path = self.path(device)
        if self._engine.tree.find(self.root) is None:
            raise ContextNotFound(self.root)
        try:
            self._engine.add_context(path, definitions=template, description=description)
        except ContextExists:
            self.log.info("device context %s exists already; adopting it", path)
        self._added(device)
        return path

    def remove_device(self, device: str) -> None:
        self._engine.remove_context(self.path(device))
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
        return self._engine.fire(
            self.path(device), event, data, level=level, author=self.controller, durable=durable
        )


@runtime_checkable
class DeviceController(Protocol):
    def start(self, handle: DeviceHandle) -> None:
        """Begin driving devices; may start threads. Must return promptly."""

    def stop(self) -> None:
        """Stop all activity and threads; called once at shutdown."""


def load_controller(target: str, options: Mapping[str, Any]) -> DeviceController:
    """Import ``module:attribute`` and call it with ``options`` as keyword arguments."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ControllerError(f"controller {target!r} must be written as 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ControllerError(f"cannot import controller module {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ControllerError(f"module {module_name!r} has no {attribute!r} (from controller {target!r})")
    try:
        controller = factory(**dict(options))
    except TypeError as exc:
        raise ControllerError(f"controller {target!r} rejected its options {dict(options)!r}: {exc}") from exc
    if not isinstance(controller, DeviceController):
        raise ControllerError(f"{target!r} made {controller!r}, which lacks start(handle) and stop()")
    return controller
