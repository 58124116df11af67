"""JSON on the wire: events, definitions, formats, tree nodes, requests and errors.

This is the one place where LinkServer exceptions become HTTP statuses
(:func:`error_status`) and error documents (:func:`error_body`), and where
request documents are checked field by field (:func:`fire_request`,
:func:`history_query`): a wrong type is a :class:`BadRequest` naming the
field, never a crash. Nothing here touches a socket or a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import (
    ContextExists,
    DataTableError,
    LinkServerError,
    PermissionDenied,
    ServerStopped,
)
from linkserver.core.events import Event
from linkserver.core.expiration import Retention
from linkserver.core.filters import parse_filter
from linkserver.core.formats import NO_DEFAULT, Field, TableFormat, to_jsonable
from linkserver.core.levels import Level
from linkserver.core.paths import check_name, compile_mask
from linkserver.core.tree import Context
from linkserver.history.base import HistoryQuery

MAX_HISTORY_LIMIT = 10_000


class BadRequest(LinkServerError, ValueError):
    """A request that is not valid JSON or has a field of the wrong type or value."""


class TooLarge(LinkServerError, ValueError):
    """A message, body or batch exceeds the server's limits."""


class AuthenticationFailed(LinkServerError, PermissionError):
    """Wrong user or password, or a missing, unknown or expired token (HTTP 401)."""


class NotFound(LinkServerError, LookupError):
    """No such route."""


# -- errors ---------------------------------------------------------------------

_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (TooLarge, 413),
    (DataTableError, 422),
    (ContextExists, 409),
    (LookupError, 404),  # ContextNotFound, EventNotDefined, EventNotFound, TemplateNotFound
    (ValueError, 400),  # BadRequest, FilterError, InvalidName, InvalidLevel, InvalidQuery, ...
    (ServerStopped, 503),
)


def error_status(exc: BaseException) -> int:
    """The HTTP status of an exception: the one mapping of the whole network API."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message", "fields"?}``; unexpected exceptions say only that something failed."""
    if not isinstance(exc, LinkServerError):
        return {"type": "InternalError", "message": "the server failed to handle the request; see its log"}
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, DataTableError):
        body["fields"] = [{"field": p.field, "message": p.message} for p in exc.problems]
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
        "format": format_json(definition.format),
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
    """Decode a request document; TooLarge beyond ``limit`` bytes, BadRequest if it is not JSON."""
    if len(text) > limit:
        raise TooLarge(f"the message has {len(text)} bytes; the limit is {limit}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the message is not valid JSON: {exc}") from None


def dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def require_object(value: Any, where: str = "the request") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object, got {_kind(value)}")
    return value


def get(
    obj: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = False,
    where: str = "",
    default: Any = None,
) -> Any:
    """``obj[key]`` checked against ``kind`` (bool is never an int here)."""
    label = f"'{key}'" + (f" in {where}" if where else "")
    if key not in obj or obj[key] is None:
        if required:
            raise BadRequest(f"{label} is required")
        return default
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise BadRequest(f"{label} must be {expected}, got {_kind(value)}")
    return value


def check_keys(obj: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(obj) - set(known))
    if unknown:
        raise BadRequest(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
            f"{where}; known keys: {', '.join(known)}"
        )


@attrs.frozen
class FireRequest:
    context: str
    event: str
    data: Any = None
    level: Level | None = None


FIRE_KEYS = ("context", "event", "data", "level", "durable")


def fire_request(obj: Any, where: str = "the request", extra: tuple[str, ...] = ()) -> FireRequest:
    """A fire request from ``{context, event, data?, level?}``; BadRequest/InvalidLevel if wrong."""
    obj = require_object(obj, where)
    check_keys(obj, FIRE_KEYS + extra, where)
    level = get(obj, "level", (str, int), where=where)
    return FireRequest(
        context=get(obj, "context", str, required=True, where=where),
        event=get(obj, "event", str, required=True, where=where),
        data=obj.get("data"),
        level=Level.parse(level) if level is not None else None,
    )


_HISTORY_PARAMS = (
    "mask",
    "event",
    "filter",
    "min_level",
    "max_level",
    "since",
    "until",
    "group",
    "author",
    "acknowledged",
    "requires_acknowledgement",
    "order",
    "limit",
    "cursor",
    "count",
)


def history_query(params: Any) -> tuple[HistoryQuery, bool]:
    """A HistoryQuery (without visibility) and whether a count is wanted, from URL query
    parameters (a Starlette ``QueryParams``: ``getlist`` and ``get``)."""
    unknown = sorted(set(params.keys()) - set(_HISTORY_PARAMS))
    if unknown:
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; known: {', '.join(_HISTORY_PARAMS)}")
    single = {key: _single(params, key) for key in _HISTORY_PARAMS if key not in ("mask", "event")}
    masks = tuple(params.getlist("mask")) or ("**",)
    for mask in masks:
        compile_mask(mask)
    names = tuple(check_name(name, "event name") for name in params.getlist("event"))
    order = single["order"] or "newest"
    if order not in ("newest", "oldest"):
        raise BadRequest(f"'order' must be newest or oldest, got {order!r}")
    limit = _integer(single["limit"], "limit", 100, 1, MAX_HISTORY_LIMIT)
    query = HistoryQuery(
        masks=masks,
        names=names,
        min_level=Level.parse(single["min_level"]) if single["min_level"] else None,
        max_level=Level.parse(single["max_level"]) if single["max_level"] else None,
        since=_time(single["since"], "since"),
        until=_time(single["until"], "until"),
        group=single["group"],
        author=single["author"],
        acknowledged=_flag(single["acknowledged"], "acknowledged"),
        requires_acknowledgement=_flag(single["requires_acknowledgement"], "requires_acknowledgement"),
        filter=parse_filter(single["filter"]) if single["filter"] else None,
        newest_first=order == "newest",
        limit=limit,
        cursor=single["cursor"] or None,
    )
    return query, bool(_flag(single["count"], "count"))


def page_json(events: tuple[Event, ...] | list[Event], next_cursor: str | None) -> dict[str, Any]:
    return {"events": [e.marshal() for e in events], "next_cursor": next_cursor}


def parse_event_id(text: str) -> int:
    if not text.isdigit() or len(text) > 19:
        raise BadRequest(f"event id {text!r} is not an event id (a positive integer)")
    return int(text)


def _single(params: Any, key: str) -> str | None:
    values = params.getlist(key)
    if len(values) > 1:
        raise BadRequest(f"query parameter {key!r} is given {len(values)} times; give it once")
    return values[0] if values else None


def _integer(text: str | None, what: str, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{what}' must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"'{what}' must be from {low} to {high}, got {value}")
    return value


def _flag(text: str | None, what: str) -> bool | None:
    if text is None or text == "":
        return None
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(f"'{what}' must be true or false, got {text!r}")


def _time(text: str | None, what: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise BadRequest(
            f"'{what}' must be an ISO-8601 time such as 2024-05-01T12:00:00Z, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise BadRequest(f"'{what}' {text!r} has no timezone; add one, e.g. Z or +00:00")
    return moment


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)
