"""The client side of one WebSocket subscription as a pure object, plus reconnect backoff.

:class:`SubscriptionState` knows what to send to (re)subscribe and what a
server message means for the caller; the sync and async clients only move
its messages over a socket. It remembers the highest event id delivered, so
a resubscription asks the server for every stored event after it
(``resume_from``) and drops anything it already handed out. It subscribes
with ``batch: true``: the server may then push several events in one
``events`` message, which it unpacks in order.
"""

from __future__ import annotations

import collections
import random
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec
from websockets.exceptions import ConnectionClosed

from linkserver.client.errors import (
    AuthenticationFailed,
    ProtocolError,
    ServerError,
    ServerUnavailable,
    error_from_answer,
)
from linkserver.client.transport import level_name, parse_event
from linkserver.core.errors import LinkServerError, ServerStopped
from linkserver.core.events import Acknowledgement, Event, Shown, first_id_at
from linkserver.core.levels import InvalidLevel, Level
from linkserver.typing import Gap

# What a reconnect attempt may meet while the server restarts: try again later.
RETRYABLE = (ServerUnavailable, ServerError, ServerStopped, TimeoutError, ConnectionClosed, OSError)


class Backoff:
    """Reconnect delays: ``initial``, growing by ``factor`` up to ``maximum``, +-``jitter`` (a fraction)."""

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 5.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < initial <= maximum, factor >= 1 and 0 <= jitter < 1")
        self.initial, self.maximum, self.factor, self.jitter = initial, maximum, factor, jitter
        self._rng = rng or random.Random()
        self._next = initial
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt; each call lengthens the following one."""
        delay = self._next
        self._next = min(self._next * self.factor, self.maximum)
        self.attempts += 1
        return delay * (1 + self._rng.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self._next = self.initial
        self.attempts = 0


class SubscriptionState:
    """What one subscription has seen; turns server messages into Events and Gaps.

    Before any event arrived, a resubscription resumes from the moment the
    first subscription was confirmed (by this machine's clock, which is
    exact when client and server share a machine).
    """

    def __init__(
        self,
        mask: str = "**",
        event: str = "*",
        *,
        filter: str | None = None,  # noqa: A002 - the protocol's name
        min_level: Level | str | int | None = None,
        resume_from: int | None = None,
        remember: int = 10_000,
        batch: bool = True,
    ) -> None:
        self.mask, self.event, self.filter, self.batch = mask, event, filter, batch
        self.min_level = level_name(min_level)
        self.last_id: int | None = resume_from
        self.subscription: Any = None
        self.confirmed_at: datetime | None = None
        self.delivered = 0
        self.duplicates = 0
        self.gaps: list[Gap] = []
        self._recent: collections.deque[int] = collections.deque(maxlen=remember)
        self._recent_set: set[int] = set()
        self._resume = resume_from is not None

    def subscribe_message(self, ref: int) -> dict[str, Any]:
        """The ``subscribe`` request; after a first confirmation it carries ``resume_from``."""
        message: dict[str, Any] = {"type": "subscribe", "ref": ref, "mask": self.mask, "event": self.event}
        if self.filter is not None:
            message["filter"] = self.filter
        if self.min_level is not None:
            message["min_level"] = self.min_level
        if self.batch:
            message["batch"] = True
        resume = self.resume_from()
        if resume is not None:
            message["resume_from"] = resume
        return message

    def resume_from(self) -> int | None:
        if self.last_id is not None and (self._resume or self.confirmed_at is not None):
            return self.last_id
        if self.confirmed_at is not None:
            return max(first_id_at(self.confirmed_at) - 1, 0)
        return None

    def confirm(self, answer: dict[str, Any], ref: int) -> None:
        """Take the answer to ``subscribe_message(ref)``; raises the error the server answered."""
        if answer.get("ref") != ref:
            raise ProtocolError(f"expected the answer to request {ref}, got {str(answer)[:200]}")
        if answer.get("type") == "error":
            raise error_from_answer(None, answer)
        if answer.get("type") != "subscribed" or "subscription" not in answer:
            raise ProtocolError(f"expected 'subscribed', got {str(answer)[:200]}")
        self.subscription = answer["subscription"]
        if self.confirmed_at is None:
            self.confirmed_at = datetime.now(UTC)

    def receive(self, message: dict[str, Any]) -> list[Event | Gap]:
        """The items a pushed message gives the caller, in order: events not seen before
        (one ``event`` or the list of an ``events`` message) and gaps; [] for anything else."""
        kind = message.get("type")
        if kind == "events":
            raw = message.get("events")
            if not isinstance(raw, list):
                raise ProtocolError(f"an 'events' message without a list of events: {str(message)[:200]}")
            return [event for event in map(self._event, raw) if event is not None]
        if kind == "event":
            event = self._event(message.get("event"))
            return [event] if event is not None else []
        if kind == "gap":
            gap = Gap(
                last_delivered_id=message.get("last_delivered_id"),
                last_dropped_id=int(message.get("last_dropped_id") or 0),
                dropped=int(message.get("dropped") or 0),
            )
            self.gaps.append(gap)
            return [gap]
        if kind == "error" and message.get("ref") is None:
            raise error_from_answer(None, message)
        return []

    def receive_text(self, raw: str | bytes) -> list[Event | Gap]:
        """``receive(decode(raw))`` for one message as received, cheaper for the usual ones:
        an ``event`` or ``events`` message of well-formed events is read straight into
        Events (:func:`_from_wire`); anything else, or anything that does not read so (a
        malformed event, a level in another spelling), goes through :func:`decode` and
        :meth:`receive`, whose results and errors it then gives."""
        try:
            pushed = _decode_pushed(raw)
            if type(pushed) is _WirePush:  # the usual message: one event
                event = _from_wire(pushed.event)
                return [event] if self._fresh(event) else []
            events = [_from_wire(wire) for wire in pushed.events]
        except (msgspec.DecodeError, LinkServerError):
            return self.receive(decode(raw))
        return [event for event in events if self._fresh(event)]

    def _event(self, raw: Any) -> Event | None:
        """The event, or None when it was delivered before (a duplicate, not even parsed)."""
        if isinstance(raw, dict) and isinstance(raw.get("id"), int) and raw["id"] in self._recent_set:
            self.duplicates += 1
            return None
        event = parse_event(raw)
        self._fresh(event)
        return event

    def _fresh(self, event: Event) -> bool:
        """Note ``event`` as delivered; False (and nothing noted) if it was delivered before."""
        event_id = event.id
        if event_id in self._recent_set:
            self.duplicates += 1
            return False
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(event_id)
        self._recent_set.add(event_id)
        if self.last_id is None or event_id > self.last_id:
            self.last_id = event_id
        self.delivered += 1
        return True

    def disconnected(self) -> None:
        self.subscription = None


# msgspec's decoder: the same values as json.loads (integers of any size stay int), in a
# fifth of the time; a subscriber decodes every pushed event, so that is most of its CPU.
_decode_json = msgspec.json.Decoder().decode


def decode(raw: str | bytes) -> dict[str, Any]:
    """One server message as a dict; ProtocolError if it is not a JSON object."""
    try:
        message = _decode_json(raw)
    except ValueError as exc:  # msgspec.DecodeError is one
        raise ProtocolError(f"the server sent a message that is not JSON: {str(raw)[:200]}") from exc
    if not isinstance(message, dict):
        raise ProtocolError(f"the server sent a message that is not an object: {str(raw)[:200]}")
    return message


# Pushed events read in one pass by msgspec's typed decoder (datetimes parsed in C,
# no dict per event): the shapes Event.marshal writes, as Event.unmarshal reads them,
# but strict where unmarshal is lenient (a level or time in another spelling, data
# that are not records): such a message does not read here and takes the general path.
class _WireAcknowledgement(msgspec.Struct):
    time: datetime
    user: str
    text: str


class _WireEvent(msgspec.Struct):
    id: int
    context: str
    name: str
    level: str
    created: datetime
    expires: datetime | None = None
    author: str | None = None
    group: str | None = None
    data: tuple[dict[str, Any], ...] | None = None
    acknowledgements: tuple[_WireAcknowledgement, ...] | None = None
    category: str | None = None
    message: Any = None
    labels: Any = None
    instructions: Any = None


class _WirePush(msgspec.Struct, tag_field="type", tag="event"):
    event: _WireEvent


class _WireBatch(msgspec.Struct, tag_field="type", tag="events"):
    events: list[_WireEvent]


_decode_pushed = msgspec.json.Decoder(_WirePush | _WireBatch).decode
_LEVELS: dict[str, Level] = dict(Level._member_map_)  # type: ignore[arg-type]  # its members by name


def _from_wire(wire: _WireEvent) -> Event:
    """The Event that Event.unmarshal makes of the same JSON (InvalidLevel for a level
    that is not a member's name: Level.parse, on the general path, reads other spellings)."""
    level = _LEVELS.get(wire.level)
    if level is None:
        raise InvalidLevel(f"not a level's name: {wire.level!r}")
    message, labels, instructions = wire.message, wire.labels, wire.instructions
    acknowledgements = wire.acknowledgements
    return Event(
        wire.id,
        wire.context,
        wire.name,
        level,
        wire.created,
        wire.expires,
        wire.author,
        wire.group,
        wire.data or (),
        tuple(Acknowledgement(time=a.time, user=a.user, text=a.text) for a in acknowledgements)
        if acknowledgements
        else (),
        wire.category,
        None
        if message is None and labels is None and instructions is None
        else Shown(message=message, labels=labels, instructions=instructions),
    )


def websocket_url(base: str, token: str | None) -> str:
    return base + (f"?token={quote(token, safe='')}" if token else "")


def connect_error(exc: BaseException, url: str) -> LinkServerError:
    """A websockets/OS exception of opening a connection as a client error."""
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 401:
            return AuthenticationFailed("the server refused the token (401); log in again")
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        from linkserver.client.transport import response_error

        return response_error(status, body)
    if isinstance(exc, LinkServerError):
        return exc
    return ServerUnavailable(url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
