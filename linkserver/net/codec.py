"""JSON on the wire: events, definitions, formats, tree nodes, requests and errors.

This is the one place where LinkServer exceptions become HTTP statuses
(:func:`error_status`, from the table in :mod:`linkserver.wire.errors`) and
error documents (:func:`error_body`), and where decoded request shapes
(:mod:`linkserver.wire.shapes`) become the server's queries
(:func:`history_query`). Nothing here touches a socket or a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import (
    AuthenticationFailed,
    BadRequest,
    DataTableError,
    FilterError,
    LinkServerError,
    NotFound,
    TooLarge,
)
from linkserver.core.events import Event
from linkserver.core.expiration import Retention
from linkserver.core.filters import parse_filter
from linkserver.core.formats import NO_DEFAULT, Field, TableFormat, to_jsonable
from linkserver.core.levels import Level
from linkserver.core.paths import compile_mask
from linkserver.core.tree import Context
from linkserver.history.base import HistoryQuery
from linkserver.wire import decode
from linkserver.wire.errors import status_of
from linkserver.wire.shapes import MAX_HISTORY_LIMIT, EventPath, FilterCheck, FireItem, HistoryParams

__all__ = [
    "MAX_HISTORY_LIMIT",
    "AuthenticationFailed",
    "BadRequest",
    "FireRequest",
    "NotFound",
    "TooLarge",
    "error_body",
    "error_status",
]

FireRequest = FireItem  # what the gateway fires: {context, event, data?, level?}


# -- errors ---------------------------------------------------------------------


def error_status(exc: BaseException) -> int:
    """The HTTP status of an exception: the one mapping of the whole network API."""
    return status_of(exc)


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message", "fields"?}``; unexpected exceptions say only that something failed."""
    if not isinstance(exc, LinkServerError):
        return {"type": "InternalError", "message": "the server failed to handle the request; see its log"}
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, DataTableError):
        body["fields"] = [{"field": p.field, "message": p.message} for p in exc.problems]
    if isinstance(exc, FilterError) and exc.column is not None:
        body["column"] = exc.column
    return body


# -- the model --------------------------------------------------------------------


def event_json(event: Event) -> dict[str, Any]:
    return event.marshal()


def field_json(field: Field) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": field.name,
        "type": field.type.value,
        "description": field.description,
        "nullable": field.nullable,
    }
    if field.default is not NO_DEFAULT:
        out["default"] = to_jsonable(field.default)
    if field.allowed is not None:
        out["allowed"] = to_jsonable(list(field.allowed))
    for key in ("min", "max", "pattern"):
        if getattr(field, key) is not None:
            out[key] = getattr(field, key)
    if field.format is not None:
        out["format"] = format_json(field.format)
    if field.labels is not None:
        out["labels"] = [{"value": value, "label": label} for value, label in field.labels]
    return out


def format_json(fmt: TableFormat) -> dict[str, Any]:
    return {
        "min_records": fmt.min_records,
        "max_records": fmt.max_records,
        "fields": [field_json(f) for f in fmt.fields],
    }


def retention_json(retention: Retention | None) -> dict[str, Any] | None:
    """The effective lifetime of a definition's events in one context, and where it comes from."""
    if retention is None:
        return None
    out: dict[str, Any] = {"seconds": retention.lifetime.total_seconds(), "source": retention.source}
    if retention.rule is not None:
        out["mask"] = retention.rule.mask.text
        out["event"] = retention.rule.event
    return out


def definition_json(definition: EventDefinition, retention: Retention | None = None) -> dict[str, Any]:
    """A definition; ``retention`` (the expiration table applied in one context) when known."""
    out = {
        "name": definition.name,
        "description": definition.description,
        "help": definition.help,
        "level": definition.level.name,
        "persistent": definition.persistent,
        "expiration": definition.expiration.total_seconds() if definition.expiration is not None else None,
        "permissions": str(definition.permissions),
        "fire_permissions": str(definition.fire_permissions),
        "group": definition.group,
        "hidden": definition.hidden,
        "requires_acknowledgement": definition.requires_acknowledgement,
        "category": str(definition.category),
        "format": format_json(definition.format),
        "message": definition.message.text if definition.message is not None else None,
        "instructions": definition.instructions,
    }
    if retention is not None:
        out["retention"] = retention_json(retention)
    return out


def tree_json(
    context: Context,
    visible: Callable[[Context], bool],
    depth: int | None,
    describe: Callable[[Context], bool],
) -> dict[str, Any]:
    """A node and its visible children down to ``depth`` (None: all); ``children`` is null where
    the depth cut the walk. ``describe(context)`` says whether the description may be shown."""
    children: list[dict[str, Any]] | None = None
    if depth is None or depth > 0:
        below = None if depth is None else depth - 1
        children = [
            tree_json(child, visible, below, describe)
            for child in sorted(context.children.values(), key=lambda c: c.name)
            if visible(child)
        ]
    return {
        "path": context.path,
        "name": context.name,
        "description": context.description if describe(context) else "",
        "children": children,
    }


# -- requests -----------------------------------------------------------------------


def parse_json(text: str | bytes, limit: int) -> Any:
    """Decode a request document strictly; TooLarge beyond ``limit`` bytes, BadRequest if it
    is not JSON text (see :mod:`linkserver.wire.decode`)."""
    decode.check_size(text, limit)
    return decode.loads(text)


def dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def fire_request(obj: Any, where: str = "the request") -> FireRequest:
    """A fire request from a decoded ``{context, event, data?, level?}``; BadRequest naming the
    field if it does not fit the shape."""
    return decode.convert(obj, FireItem, where)


def history_query(params: HistoryParams) -> tuple[HistoryQuery, bool]:
    """A HistoryQuery (without visibility) and whether a count is wanted."""
    masks = tuple(params.mask) or ("**",)
    for mask in masks:
        compile_mask(mask)
    query = HistoryQuery(
        masks=masks,
        names=tuple(params.event),
        min_level=Level.parse(params.min_level) if params.min_level is not None else None,
        max_level=Level.parse(params.max_level) if params.max_level is not None else None,
        since=params.since,
        until=params.until,
        group=params.group,
        author=params.author,
        acknowledged=params.acknowledged,
        requires_acknowledgement=params.requires_acknowledgement,
        filter=parse_filter(params.filter) if params.filter else None,
        newest_first=params.order == "newest",
        limit=params.limit,
        cursor=params.cursor or None,
    )
    return query, params.count


def filter_check(body: FilterCheck, access: Any, principal: Any) -> dict[str, Any]:
    """``POST /filters/check``: the FilterError a history query with this filter, masks and
    event names would raise for ``principal``, or what the filter reads."""
    masks = tuple(body.mask) or ("**",)
    for mask in masks:
        compile_mask(mask)
    parsed = parse_filter(body.filter)
    access.check_filter(HistoryQuery(masks=masks, names=tuple(body.event), filter=parsed), principal)
    return {"filter": body.filter, "data_fields": sorted(parsed.data_fields())}


def page_json(events: tuple[Event, ...] | list[Event], next_cursor: str | None) -> dict[str, Any]:
    return {"events": [e.marshal() for e in events], "next_cursor": next_cursor}


def parse_event_id(text: str) -> int:
    return decode.convert({"id": text}, EventPath, "the path", from_text=True).id
