"""The cluster's wire form of a fired event: what node A publishes and node B decodes.

A JSON array of ten values: id, context, name, level (its number), created
and expires in microseconds since 1970 (expires null: not persistent),
author, group, category, and the data table encoded as history stores it
(:func:`linkserver.history.codec.encode_data`). The message's ``type`` says
the rest (:data:`LIVE`: a persistent event sent before its commit;
:data:`NOTICE`: a commit notice, not an event; see
:mod:`linkserver.bridges.amqp_cluster`).
"""

from __future__ import annotations

import json

from linkserver.core.events import Event, new_event
from linkserver.core.levels import Level
from linkserver.history.codec import decode_data, encode_data, from_micros, micros

# The message types, as linkserver.bridges.amqp_cluster sets them (not imported from there:
# pika is imported only where a cluster is configured).
LIVE, NOTICE = "live", "commits"
_LEVELS = tuple(Level)


def encode_event(event: Event) -> bytes:
    """The cluster's wire form of a fired event (see the module doc)."""
    head = json.dumps(
        [
            event.id,
            event.context,
            event.name,
            int(event.level),
            micros(event.created),
            micros(event.expires) if event.expires is not None else None,
            event.author,
            event.group,
            event.category,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f"{head[:-1]},{encode_data(event.data)}]".encode()


def decode_event(body: bytes) -> Event:
    """The event :func:`encode_event` made; ValueError (or a subclass) when it is not one."""
    raw = json.loads(body)
    if not isinstance(raw, list) or len(raw) != 10:
        raise ValueError("not a cluster message: a JSON array of 10 values expected")
    event_id, context, name, level, created, expires, author, group, category, data = raw
    return new_event(
        int(event_id),
        context,
        name,
        _LEVELS[level],
        from_micros(created),
        from_micros(expires) if expires is not None else None,
        author,
        group,
        decode_data(data),
        category,
    )
