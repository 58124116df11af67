"""The broker side of each bridge for the contract suite: make a bridge, see what it
published, post to it, read what it dead-lettered, take the broker away and back.

Every implementation of :class:`BrokerSide` talks to its broker the way an outside
consumer would (the AMQP one with its own pika connection), never through the bridge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
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

    def received_ids(self, expected: Sequence[str], timeout: float = 15.0) -> list[str]:
        """The message ids published, in arrival order with duplicates kept, once every id of
        ``expected`` came. Delivery is at least once: a message whose acknowledgement was lost
        with the connection comes again, so counting messages alone would stop short of the
        last ones; TimeoutError naming the ids that never came."""
        deadline = time.monotonic() + timeout
        wanted = set(expected)
        count = len(wanted)
        while True:
            try:
                received = self.received(count, timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                got = {r.message_id for r in self.received_so_far()}
                missing = [i for i in expected if i not in got]
                raise TimeoutError(
                    f"{len(missing)} of {len(wanted)} message ids never came within {timeout} s: "
                    f"{missing[:5]}{' ...' if len(missing) > 5 else ''}"
                ) from None
            ids = [r.message_id for r in received]
            missing_count = len(wanted - set(ids))
            if not missing_count:
                return ids
            count += missing_count  # at least that many messages more

    def received_so_far(self) -> list[Received]:
        """Every message published until now, without waiting."""
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

    def received_so_far(self) -> list[Received]:
        with self.broker._changed:
            count = len(self.broker.messages)
        return self.received(count, timeout=0)

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
