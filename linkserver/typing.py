"""The shapes users implement or receive: one home for every plugin Protocol, and ``Gap``.

What is here depends on the pure core only, so a client, a remote device
controller or a bridge process imports it without the server package (and
without SQLAlchemy, Starlette and the rest):

- :class:`Listener`: anything called with one event (``Engine.listen``,
  ``LinkServer.listen``, the client's subscriptions).
- :class:`DeviceController` and the :class:`DeviceHandle` it is given: a
  plugin that drives devices and fires events in their contexts, in the
  server (``controllers:`` in the configuration) or remote
  (``linkserver.client.controllers``).
- :class:`Bridge` and the :class:`BridgeHandle` it is given: a plugin that
  carries events between LinkServer and a broker. Outbound, the server calls
  :meth:`Bridge.publish` with each event it should carry; inbound, the bridge
  fires what it receives through its handle, validated like any fire.
- :class:`Gap`: where a subscription lost events (overflow policy ``drop``).

Implementations are checked structurally (``isinstance`` works: the
Protocols are ``runtime_checkable``); none needs to inherit from them.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

import attrs

from linkserver.core.events import Event
from linkserver.core.levels import Level

__all__ = ["Bridge", "BridgeHandle", "DeviceController", "DeviceHandle", "Gap", "Listener"]


@runtime_checkable
class Listener(Protocol):
    """Anything callable with one event. What it returns is ignored; what it raises is
    counted and logged and never reaches the firer or another listener."""

    def __call__(self, event: Event) -> object: ...


@attrs.frozen(kw_only=True)
class Gap:
    """Events dropped for a subscription: after ``last_delivered_id`` (None: from the start),
    ``dropped`` events were lost up to and including ``last_dropped_id``. Fill the gap
    from history with ids in ``(last_delivered_id, last_dropped_id]``."""

    last_delivered_id: int | None
    last_dropped_id: int
    dropped: int


@runtime_checkable
class DeviceHandle(Protocol):
    """What a device controller gets: device contexts under ``root`` to manage and fire in.

    In-process controllers get ``linkserver.server.controllers.LocalDeviceHandle``;
    remote ones ``linkserver.client.controllers.RemoteDeviceHandle``; both fit this shape.
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


@runtime_checkable
class DeviceController(Protocol):
    """A plugin that drives devices: loaded from ``module:attribute`` with its options."""

    def start(self, handle: DeviceHandle) -> None:
        """Begin driving devices; may start threads. Must return promptly."""

    def stop(self) -> None:
        """Stop all activity and threads; called once at shutdown."""


@runtime_checkable
class BridgeHandle(Protocol):
    """What a bridge gets from the server: its name, a logger, and the way in.

    ``fire`` is the engine's fire lifecycle for the bridge's configured
    principal: an inbound event is resolved, checked, validated and stored
    exactly like one posted by a client, and raises the same errors
    (ContextNotFound, EventNotDefined, PermissionDenied, DataTableError) so
    the bridge can reject the message that carried it.
    """

    name: str
    log: logging.Logger

    def fire(
        self,
        path: str,
        event: str,
        data: Any = None,
        *,
        level: Level | str | None = None,
        durable: bool = False,
    ) -> Event:
        """Fire ``event`` in the context at ``path``; ``durable`` returns once it is committed."""


@runtime_checkable
class Bridge(Protocol):
    """A plugin that carries events between LinkServer and a broker, in either direction.

    ``start`` is called once, before any ``publish``; it must return
    promptly (connect in the background and retry: a broker that is down at
    start is a log line, not a failed server). ``publish`` is called with
    every event the bridge's configuration selects, in firing order per
    context, after a persistent event is committed; it must never block the
    caller on the broker (queue, or rely on an outbox) and never raise for a
    broker that is down. ``stop`` is called once at shutdown and may flush
    what is queued within its own bounded time.
    """

    def start(self, handle: BridgeHandle) -> None:
        """Connect (in the background) and begin consuming inbound messages, if any."""

    def publish(self, event: Event) -> None:
        """Carry ``event`` out to the broker, without blocking on it."""

    def stop(self) -> None:
        """Stop consuming and publishing; release connections and threads."""
