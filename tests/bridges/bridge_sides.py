"""The broker side of each bridge for the contract suite: make a bridge, see what it
published, post to it, read what it dead-lettered, take the broker away and back.

Every implementation of :class:`BrokerSide` talks to its broker the way an outside
consumer would (the AMQP one with its own pika connection), never through the bridge.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from linkserver.bridges.memory import MemoryBridge, MemoryBroker
from linkserver.typing import Bridge

INGEST = "ingest"  # the user inbound events are fired as (operator on devices.**)


@attrs.frozen
class Received:
    key: str
    document: dict[str, Any]
    message_id: str
    persistent: bool


class BrokerSide:
    """What the contract tests need from a broker (see the module doc)."""

    name = "?"

    def bridge(self, name: str, **options: Any) -> Bridge:
        raise NotImplementedError

    def received(self, count: int, timeout: float = 15.0) -> list[Received]:
        """The first ``count`` messages published, in order; TimeoutError if fewer come."""
        raise NotImplementedError

    def post(self, body: bytes) -> None:
        raise NotImplementedError

    def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[bytes, str]]:
        """The first ``count`` dead-lettered messages with their reason header."""
        raise NotImplementedError

    def set_available(self, available: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemorySide(BrokerSide):
    name = "memory"

    def __init__(self) -> None:
        self.broker = MemoryBroker()

    def bridge(self, name: str, **options: Any) -> Bridge:
        return MemoryBridge(name, broker=self.broker, **options)

    def received(self, count: int, timeout: float = 15.0) -> list[Received]:
        return [
            Received(m.key, json.loads(m.body), m.message_id, True)
            for m in self.broker.wait_for(count, timeout)
        ]

    def post(self, body: bytes) -> None:
        self.broker.post(body)

    def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[bytes, str]]:
        broker = self.broker
        with broker._changed:
            if not broker._changed.wait_for(lambda: len(broker.dead_letters) >= count, timeout):
                raise TimeoutError(f"{len(broker.dead_letters)} dead letters, waited for {count}")
            return [(m.body, m.headers["x-linkserver-reason"]) for m in broker.dead_letters[:count]]

    def set_available(self, available: bool) -> None:
        self.broker.set_available(available)
