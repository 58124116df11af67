"""Running the configured bridges: load each plugin, give it a handle, start and stop it.

A bridge is a plugin like a device controller: ``type`` in the ``bridges:``
section is a shipped name (``amqp``, ``memory``) or ``module:Class``, built with
its options as keyword arguments. Its :class:`BridgeHost` is the
:class:`~linkserver.typing.BridgeHandle` it reports to; the host
owns the guarantees (:mod:`linkserver.server.outbound`,
:mod:`linkserver.server.inbound`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from linkserver.core.cloudevents import Posted
from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.core.permissions import Principal
from linkserver.server.inbound import DEFAULT_MAX_SIZE, Inbound
from linkserver.server.outbound import DEFAULT_BUFFER, DEFAULT_WINDOW, Outbound, Select, Selection
from linkserver.typing import Bridge

if TYPE_CHECKING:
    from linkserver.history.base import HistoryStore
    from linkserver.server.engine import Engine
    from linkserver.server.users import UserDirectory

log = logging.getLogger("linkserver.bridges")

SHIPPED = {
    "amqp": "linkserver.bridges.amqp:AmqpBridge",
    "memory": "linkserver.bridges.memory:MemoryBridge",
    "mqtt": "linkserver.bridges.mqtt:MqttBridge",
}


class BridgeError(LinkServerError, RuntimeError):
    """A bridge could not be loaded or started."""


def load_bridge(name: str, kind: str, options: Mapping[str, Any]) -> Bridge:
    target = SHIPPED.get(kind, kind)
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise BridgeError(
            f"bridge {name!r}: type {kind!r} must be one of {', '.join(SHIPPED)} or 'module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BridgeError(f"bridge {name!r}: cannot import {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if factory is None:
        raise BridgeError(f"bridge {name!r}: module {module_name!r} has no {attribute!r}")
    try:
        bridge = factory(name, **dict(options))
    except (TypeError, ValueError) as exc:
        raise BridgeError(f"bridge {name!r} ({kind}) rejected its options: {exc}") from exc
    if not isinstance(bridge, Bridge):
        raise BridgeError(f"bridge {name!r}: {target!r} made {bridge!r}, which lacks start, publish and stop")
    return bridge


class BridgeHost:
    """One running bridge and the handle it reports to."""

    def __init__(
        self,
        name: str,
        bridge: Bridge,
        engine: Engine,
        history: HistoryStore,
        select: Sequence[Select] = (),
        *,
        node: int = 0,
        principal: Principal | str | None = None,
        users: UserDirectory | None = None,
        buffer: int = DEFAULT_BUFFER,
        window: int = DEFAULT_WINDOW,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.name = name
        self.log = logging.getLogger(f"linkserver.bridges.{name}")
        self.bridge = bridge
        self.engine = engine
        self.outbound = Outbound(
            name,
            bridge,
            engine,
            history,
            Selection(select, engine.tree),
            node=node,
            buffer=buffer,
            window=window,
        )
        self._principal = principal
        self._users = users
        self.inbound = Inbound(name, engine, self._inbound_principal, max_size=max_size)

    def _inbound_principal(self) -> Principal | str:
        principal = self._principal
        if isinstance(principal, str) and self._users is not None:
            try:
                return self._users[principal]  # looked up each time: grants change at run time
            except KeyError:
                raise BridgeError(
                    f"bridge {self.name!r}: its principal {principal!r} is not a user"
                ) from None
        if principal is None:
            # No principal: refuse inbound events rather than fire them unchecked.
            return Principal(name=f"bridge {self.name}")
        return principal

    # -- lifecycle ------------------------------------------------------------

    def attach(self) -> None:
        self.outbound.attach()

    def start(self) -> None:
        principal = self._principal
        if isinstance(principal, str) and self._users is not None and principal not in set(self._users):
            log.error(
                "bridge %s: its inbound principal %r is not a user; posted events wait in the broker "
                "until the user exists (add it with 'linkserver user add')",
                self.name,
                principal,
            )
        self.outbound.start()
        self.bridge.start(self)

    def stop(self, timeout: float = 5.0) -> None:
        self.outbound.stop(timeout)
        try:
            self.bridge.stop(timeout)
        except Exception:
            log.exception("bridge %s failed to stop", self.name)

    # -- BridgeHandle ---------------------------------------------------------

    def ready(self, ready: bool, reason: str) -> None:
        self.outbound.ready(ready, reason)

    def confirmed(self, ids: Sequence[int]) -> None:
        self.outbound.confirmed(ids)

    def failed(self, ids: Sequence[int], reason: str) -> None:
        self.outbound.failed(ids, reason)

    def fire(self, posted: Posted) -> Future[Event]:
        return self.inbound.fire(posted)

    def receive(self, body: bytes) -> Future[Event]:
        return self.inbound.receive(body)

    def describe(self) -> dict[str, Any]:
        return {
            **self.outbound.describe(),
            "received": self.inbound.accepted,
            "refused": dict(self.inbound.refused),
        }


def select_entries(raw: Sequence[Any]) -> list[Select]:
    """:class:`Select` entries from the configuration's (anything with mask, event, filter,
    min_level attributes) or from plain mappings."""
    entries = []
    for item in raw:
        get = (
            item.get
            if isinstance(item, Mapping)
            else lambda key, default=None, item=item: getattr(item, key, default)
        )
        level = get("min_level", None)
        entries.append(
            Select(
                mask=get("mask", "**"),
                event=get("event", "*"),
                filter=get("filter", None),
                min_level=Level.parse(level) if level is not None else Level.NONE,
            )
        )
    return entries
