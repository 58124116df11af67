"""The memory bridge: a broker inside the process, for tests (yours and ours).

``MemoryBroker.named("x")`` is one broker per name in the process, so a
configured bridge (``type: memory``, ``broker: x``) and a test meet at the
same one. The broker keeps what bridges published (routing key, body,
message id), can go down and come back (:meth:`MemoryBroker.set_available`),
hold confirms back (a slow broker), and takes posted messages for the
bridges' inbound side, keeping what they dead-lettered and why.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

import attrs

from linkserver.core.cloudevents import PoisonMessage, encode
from linkserver.core.events import Event
from linkserver.core.routing import DEFAULT, category_of, router
from linkserver.typing import BridgeHandle


@attrs.frozen
class Message:
    key: str
    body: bytes
    message_id: str
    headers: dict[str, str] = attrs.field(factory=dict)


class MemoryBroker:
    """What memory bridges publish to and consume from. Thread-safe."""

    _named: ClassVar[dict[str, MemoryBroker]] = {}
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.dead_letters: list[Message] = []
        self.acked: list[bytes] = []
        self.requeued: list[bytes] = []
        self.available = True
        self.holding = False  # confirms are held back until release()
        self._bridges: list[MemoryBridge] = []
        self._changed = threading.Condition()

    @classmethod
    def named(cls, name: str) -> MemoryBroker:
        with cls._named_lock:
            broker = cls._named.get(name)
            if broker is None:
                broker = cls._named[name] = MemoryBroker()
            return broker

    def set_available(self, available: bool) -> None:
        """Take the broker down (every bridge loses its connection) or bring it back."""
        with self._changed:
            self.available = available
            bridges = list(self._bridges)
        for bridge in bridges:
            bridge._connection_changed(available)

    def hold(self) -> None:
        """Keep confirms back from now on (a slow broker)."""
        self.holding = True

    def release(self) -> None:
        self.holding = False
        for bridge in list(self._bridges):
            bridge._release()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Message]:
        """The first ``count`` messages published, once there are that many (TimeoutError)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} messages published, waited for {count}")
            return list(self.messages[:count])

    def wait_settled(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` posted messages were acked, dead-lettered or requeued."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: len(self.acked) + len(self.dead_letters) + len(self.requeued) >= count, timeout
            ):
                raise TimeoutError("posted messages not settled in time")

    def post(self, body: bytes) -> None:
        """Put a message on the inbound queue of every bridge consuming here."""
        for bridge in list(self._bridges):
            bridge._deliver(body)

    def _publish(self, messages: Sequence[Message]) -> None:
        with self._changed:
            self.messages.extend(messages)
            self._changed.notify_all()

    def _settled(self, into: list, item: object) -> None:  # type: ignore[type-arg]
        with self._changed:
            into.append(item)
            self._changed.notify_all()


class MemoryBridge:
    """A :class:`~linkserver.typing.Bridge` to a :class:`MemoryBroker`."""

    def __init__(
        self,
        name: str,
        *,
        broker: MemoryBroker | str = "default",
        routing: str = DEFAULT,
        source: str = "node0",
        inbound: bool = True,
    ) -> None:
        self.name = name
        self.broker = MemoryBroker.named(broker) if isinstance(broker, str) else broker
        self.source = source
        self.routing = routing
        self.inbound = inbound
        self.handle: BridgeHandle | None = None
        self._key = router(routing, source)
        self._lock = threading.Lock()
        self._unconfirmed: list[int] = []
        self._connected = False

    def start(self, handle: BridgeHandle) -> None:
        self.handle = handle
        with self.broker._changed:
            self.broker._bridges.append(self)
        self._connection_changed(self.broker.available)

    def stop(self, timeout: float = 5.0) -> None:
        with self.broker._changed:
            if self in self.broker._bridges:
                self.broker._bridges.remove(self)
        self._connected = False

    def publish(self, events: Sequence[Event]) -> None:
        handle = self.handle
        assert handle is not None
        if not self._connected:
            handle.failed([e.id for e in events], "not connected")
            return
        self.broker._publish(
            [
                Message(self._key(e), encode(e, self.source, category=category_of(e)), str(e.id))
                for e in events
            ]
        )
        with self._lock:
            if self.broker.holding:
                self._unconfirmed.extend(e.id for e in events)
                return
        handle.confirmed([e.id for e in events])

    def _release(self) -> None:
        with self._lock:
            ids, self._unconfirmed = self._unconfirmed, []
        if ids and self.handle is not None:
            self.handle.confirmed(ids)

    def _connection_changed(self, available: bool) -> None:
        handle = self.handle
        if handle is None:
            return
        self._connected = available
        if available:
            handle.ready(True, "memory broker available")
            return
        with self._lock:
            lost, self._unconfirmed = self._unconfirmed, []
        handle.ready(False, "memory broker unavailable")
        if lost:
            handle.failed(lost, "connection lost before the confirm")

    def _deliver(self, body: bytes) -> None:
        if not self.inbound or self.handle is None:
            return
        broker = self.broker

        def settled(future: object) -> None:
            error = future.exception()  # type: ignore[attr-defined]
            if error is None:
                broker._settled(broker.acked, body)
            elif isinstance(error, PoisonMessage):
                broker._settled(
                    broker.dead_letters, Message("", body, "", {"x-linkserver-reason": str(error)})
                )
            else:
                broker._settled(broker.requeued, body)

        self.handle.receive(body).add_done_callback(settled)
