"""CloudEvents 1.0 in structured JSON mode, both ways, and the other posted-event form.

Every bridge (AMQP, MQTT, ...) encodes outbound events with :func:`encode` and
decodes what a broker posts with :func:`decode_posted`, so that a consumer sees
the same document whichever broker carried it. Pure: no I/O.

An event becomes (https://github.com/cloudevents/spec, v1.0.2)::

    {"specversion": "1.0", "id": "7291...", "source": "node1",
     "type": "linkserver.overheated", "subject": "devices.pump7",
     "time": "2026-12-02T03:00:00.123000+00:00",
     "datacontenttype": "application/json",
     "linkserverlevel": "WARNING", "linkservercontext": "devices.pump7",
     "data": [{"temperature": 97.5, "unit": "degC"}]}

``id`` is the event id (also the broker's message id, for de-duplication);
``subject`` and the ``linkservercontext`` extension both carry the context path
(``subject`` is what generic CloudEvents tools show; the extension is what
LinkServer reads back); ``data`` is the event's data table (a list of records).
Further extensions: ``linkserverauthor``, ``linkservergroup`` when set,
``linkservercategory`` when the bridge knows one, and ``linkservermessage``: the
event's message (its definition's template rendered, as the API shows it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import msgspec

from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event
from linkserver.core.paths import ROOT_NAME, display
from linkserver.core.records import to_jsonable

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "linkserver."
LEVEL = "linkserverlevel"
CONTEXT = "linkservercontext"
AUTHOR = "linkserverauthor"
GROUP = "linkservergroup"
CATEGORY = "linkservercategory"
MESSAGE = "linkservermessage"
REQUIRED = ("specversion", "id", "source", "type")
_encoder = msgspec.json.Encoder()


class PoisonMessage(LinkServerError, ValueError):
    """A posted message that cannot be an event: not JSON, not an object, a missing or
    mistyped attribute. ``kind`` names the problem for metrics (``invalid_json``,
    ``invalid_shape``, ``oversize``, ...)."""

    def __init__(self, message: str, kind: str = "invalid_shape") -> None:
        self.kind = kind
        super().__init__(message)


@attrs.frozen(kw_only=True)
class Posted:
    """An event someone asks LinkServer to fire (from a broker): not validated yet.

    ``id`` is the sender's id (CloudEvents ``id``) for log lines, never the
    LinkServer event id, which fire assigns.
    """

    context: str
    event: str
    data: Any = None
    level: str | int | None = None
    id: str | None = None


def to_cloudevent(event: Event, source: str, *, category: str | None = None) -> dict[str, Any]:
    """The CloudEvents document of ``event`` as a dict (see the module doc)."""
    document: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": str(event.id),
        "source": source,
        "type": TYPE_PREFIX + event.name,
        "subject": display(event.context),
        "time": event.created.isoformat(),
        "datacontenttype": "application/json",
        LEVEL: event.level.name,
        CONTEXT: event.context,
    }
    if event.author is not None:
        document[AUTHOR] = event.author
    if event.group is not None:
        document[GROUP] = event.group
    if category is not None:
        document[CATEGORY] = category
    message = event.message
    if message is not None:
        document[MESSAGE] = message
    document["data"] = to_jsonable(list(event.data))
    return document


def encode(event: Event, source: str, *, category: str | None = None) -> bytes:
    """The CloudEvents document of ``event`` as compact UTF-8 JSON: a message body.

    The same document as :func:`to_cloudevent`, made by msgspec straight from the
    event's values (times as RFC 3339 with ``Z``): this is per published event.
    """
    context = event.context
    document: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": str(event.id),
        "source": source,
        "type": TYPE_PREFIX + event.name,
        "subject": context or ROOT_NAME,
        "time": event.created,
        "datacontenttype": "application/json",
        LEVEL: event.level.name,
        CONTEXT: context,
    }
    if event.author is not None:
        document[AUTHOR] = event.author
    if event.group is not None:
        document[GROUP] = event.group
    if category is not None:
        document[CATEGORY] = category
    message = event.message
    if message is not None:
        document[MESSAGE] = message
    document["data"] = event.data
    return _encoder.encode(document)


def decode_posted(body: bytes | str, *, max_size: int | None = None) -> Posted:
    """What a broker posted, as a :class:`Posted`: a CloudEvents document (it has
    ``specversion``) or LinkServer's own fire form ``{"context", "event", "data", "level"}``
    (the network API's ``FireItem``). Raises PoisonMessage naming the problem."""
    if max_size is not None and len(body) > max_size:
        raise PoisonMessage(f"message of {len(body)} bytes is over the limit of {max_size}", "oversize")
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PoisonMessage(f"the body is not JSON: {exc}", "invalid_json") from None
    if not isinstance(raw, dict):
        raise PoisonMessage(f"the body must be a JSON object, got {type(raw).__name__}")
    if "specversion" in raw:
        return from_cloudevent(raw)
    return _from_fire_item(raw)


def from_cloudevent(raw: Mapping[str, Any]) -> Posted:
    """A :class:`Posted` from a CloudEvents 1.0 document; PoisonMessage if it is not one."""
    if raw.get("specversion") != SPEC_VERSION:
        raise PoisonMessage(f"specversion must be {SPEC_VERSION!r}, got {raw.get('specversion')!r}")
    missing = [name for name in REQUIRED if not isinstance(raw.get(name), str) or not raw.get(name)]
    if missing:
        raise PoisonMessage(f"CloudEvent without {', '.join(missing)} (required non-empty strings)")
    context = raw.get(CONTEXT, raw.get("subject"))
    if not isinstance(context, str):
        raise PoisonMessage(f"CloudEvent {raw['id']!r} names no context: set {CONTEXT!r} or 'subject'")
    kind = raw["type"]
    name = kind[len(TYPE_PREFIX) :] if kind.startswith(TYPE_PREFIX) else kind
    content_type = raw.get("datacontenttype", "application/json")
    if not isinstance(content_type, str) or "json" not in content_type:
        raise PoisonMessage(f"CloudEvent {raw['id']!r}: datacontenttype {content_type!r} is not JSON")
    level = raw.get(LEVEL)
    if level is not None and not isinstance(level, (str, int)):
        raise PoisonMessage(f"CloudEvent {raw['id']!r}: {LEVEL} must be a level name or number")
    return Posted(context=context, event=name, data=raw.get("data"), level=level, id=raw["id"])


def _from_fire_item(raw: Mapping[str, Any]) -> Posted:
    unknown = sorted(set(raw) - {"context", "event", "data", "level"})
    if unknown:
        raise PoisonMessage(
            f"unknown keys {', '.join(map(repr, unknown))}: a posted event has context, event, data, "
            "level (or is a CloudEvent with specversion)"
        )
    context, event = raw.get("context"), raw.get("event")
    if not isinstance(context, str) or not isinstance(event, str):
        raise PoisonMessage("a posted event needs 'context' and 'event' as strings")
    level = raw.get("level")
    if level is not None and not isinstance(level, (str, int)):
        raise PoisonMessage("'level' must be a level name or number")
    return Posted(context=context, event=event, data=raw.get("data"), level=level)
