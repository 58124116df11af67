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
  carries events between LinkServer and a broker. Outbound, the server hands
  :meth:`Bridge.publish` the events it should carry, at most a window
  unconfirmed at once, and the bridge reports each one confirmed or failed;
  inbound, the bridge hands what it receives to its handle, which fires it
  like any fire.
- :class:`Gap`: where a subscription lost events (overflow policy ``drop``).

Implementations are checked structurally (``isinstance`` works: the
Protocols are ``runtime_checkable``); none needs to inherit from them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

import attrs

from linkserver.core.cloudevents import Posted
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

    def transition(self, device: str, action: str | None = None, *, to: str | None = None) -> Event:
        """Change the device's state through its state machine (docs/resources.md): by ``action``
        or to state ``to``; returns the stateChanged event. InvalidTransition when not allowed."""

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
    """What a bridge gets from the server at start. Every method may be called from any
    thread and returns promptly.

    The guarantees (a committed event is never lost, a fire never waits on the
    broker, order per context, inbound validated like any fire) are the
    server's (``linkserver.server.outbound`` and ``.inbound``): a bridge only
    moves bytes and reports what its broker said.
    """

    name: str
    log: logging.Logger

    def ready(self, ready: bool, reason: str) -> None:
        """The broker takes messages now (connected, not blocked), or it stopped: ``reason``
        says why (connection lost, blocked by a memory or disk alarm, ...). The server
        calls :meth:`Bridge.publish` only while ready; meanwhile events wait in the outbox."""

    def confirmed(self, ids: Sequence[int]) -> None:
        """The broker took responsibility for these events (a publisher confirm)."""

    def failed(self, ids: Sequence[int], reason: str) -> None:
        """These events may not have reached the broker (connection lost, negative
        confirm): the server sends them again, in their order, before anything newer."""

    def fire(self, posted: Posted) -> Future[Event]:
        """Fire an event posted through the broker exactly like any fire (definition, the
        bridge principal's fire permissions, data table). The future completes with the
        event once the message may be acknowledged to the broker (a persistent event:
        once committed), or fails: with PoisonMessage (``kind`` and message say why) for
        a message to dead-letter, with another error for a passing problem (give the
        message back to the broker for later)."""

    def receive(self, body: bytes) -> Future[Event]:
        """Decode a posted message body (a CloudEvent or LinkServer's fire form, see
        ``linkserver.core.cloudevents``) and :meth:`fire` it; a body that cannot be an
        event fails the future with PoisonMessage. Every refusal is logged and counted by
        the server: the bridge only dead-letters it."""


@runtime_checkable
class Bridge(Protocol):
    """A plugin that carries events between LinkServer and a broker, in either direction.

    Built by the server from the ``bridges:`` configuration as ``factory(name,
    **options)``; ``start`` and ``stop`` are called once each. Implementations:
    ``linkserver.bridges.memory``, ``linkserver.bridges.amqp``; every one passes
    ``tests/bridges/test_contract.py``.
    """

    name: str

    def start(self, handle: BridgeHandle) -> None:
        """Begin connecting in the background and return at once; report the connection
        through ``handle.ready``. A broker down at start is retried until :meth:`stop`
        (and said in the log), never a failed server."""

    def publish(self, events: Sequence[Event]) -> None:
        """Send ``events`` in this order without blocking on the broker. Each is later
        reported exactly once, to ``handle.confirmed`` or ``handle.failed`` (also when the
        bridge is not connected after all), unless the bridge stops first."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming and publishing, release connections and threads; confirms still
        outstanding after ``timeout`` seconds are not waited for."""
