"""Inbound events of one bridge: posted through a broker, fired like any other.

A message is decoded (CloudEvents or LinkServer's fire form, at most
``max_size`` bytes) and fired through the engine as the bridge's principal,
so the definition, the principal's fire permissions and the data table are
checked exactly as for a fire over the network API. The future a bridge gets
back completes once the message may be acknowledged to the broker: for a
persistent event when it is committed (so nothing acknowledged is lost across
a restart), for others once fired.

A message that can never become an event fails the future with PoisonMessage
(``kind`` says why: ``invalid_json``, ``invalid_shape``, ``oversize``,
``unknown_event``, ``permission``, ``invalid_data``): the bridge dead-letters
it with the reason. Anything else (history unavailable, server stopping) is a
passing problem: the bridge gives the message back to the broker for later.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from linkserver.core.cloudevents import PoisonMessage, Posted, decode_posted
from linkserver.core.errors import (
    ContextNotFound,
    DataTableError,
    EventNotDefined,
    InvalidName,
    LinkServerError,
    PermissionDenied,
)
from linkserver.core.events import Event
from linkserver.core.levels import InvalidLevel
from linkserver.core.permissions import Principal

if TYPE_CHECKING:
    from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.bridges")

DEFAULT_MAX_SIZE = 1 << 20  # bytes
LOG_EVERY = 10.0  # seconds between log lines of one kind of refusal, per bridge

_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (ContextNotFound, "unknown_event"),
    (EventNotDefined, "unknown_event"),
    (PermissionDenied, "permission"),
    (DataTableError, "invalid_data"),
    (InvalidLevel, "invalid_data"),
    (InvalidName, "invalid_shape"),
)


class Inbound:
    """Decodes and fires what one bridge receives; counts what it accepts and refuses."""

    def __init__(
        self,
        name: str,
        engine: Engine,
        principal: Callable[[], Principal | str],
        *,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.name = name
        self.engine = engine
        self.principal = principal
        self.max_size = max_size
        self.accepted = 0
        self.refused: collections.Counter[str] = collections.Counter()
        self.failed = 0  # passing problems: given back to the broker
        self._logged: dict[str, float] = {}

    def receive(self, body: bytes) -> Future[Event]:
        try:
            posted = decode_posted(body, max_size=self.max_size)
        except PoisonMessage as exc:
            return self._refuse(exc, None)
        return self.fire(posted)

    def fire(self, posted: Posted) -> Future[Event]:
        done: Future[Event] = Future()
        commits: list[Future[Event]] = []
        try:
            event = self.engine.fire(
                posted.context,
                posted.event,
                posted.data,
                level=posted.level,
                author=self.principal(),
                stored=commits.append,
            )
        except LinkServerError as exc:
            for cls, kind in _KINDS:
                if isinstance(exc, cls):
                    return self._refuse(PoisonMessage(str(exc), kind), posted)
            return self._passing(exc, posted)
        except Exception as exc:  # noqa: BLE001 - a plugin must never take the bridge down
            log.exception("bridge %s: firing %s in %s failed", self.name, posted.event, posted.context)
            return self._passing(exc, posted)
        if not commits:
            self.accepted += 1
            done.set_result(event)
            return done

        def committed(commit: Future[Event]) -> None:
            error = commit.exception()
            if error is None:
                self.accepted += 1
                done.set_result(event)
            else:
                self.failed += 1
                done.set_exception(error)

        commits[0].add_done_callback(committed)
        return done

    def _refuse(self, exc: PoisonMessage, posted: Posted | None) -> Future[Event]:
        self.refused[exc.kind] += 1
        now = time.monotonic()
        if now - self._logged.get(exc.kind, 0.0) >= LOG_EVERY:
            self._logged[exc.kind] = now
            what = f" ({posted.event} in {posted.context or 'root'})" if posted is not None else ""
            log.warning(
                "bridge %s: refused a posted message%s, dead-lettered: %s [%s; %d so far]",
                self.name,
                what,
                exc,
                exc.kind,
                self.refused[exc.kind],
            )
        future: Future[Event] = Future()
        future.set_exception(exc)
        return future

    def _passing(self, exc: Exception, posted: Posted) -> Future[Event]:
        self.failed += 1
        log.warning(
            "bridge %s: could not fire %s in %s now (%s); the broker keeps the message",
            self.name,
            posted.event,
            posted.context or "root",
            exc,
        )
        future: Future[Event] = Future()
        future.set_exception(exc)
        return future
