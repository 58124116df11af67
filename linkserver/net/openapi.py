"""The OpenAPI 3 document of the HTTP API, written by hand to match docs/protocol.md.

``tests/net/test_http.py`` checks that every route of the app appears here.
"""

from __future__ import annotations

from typing import Any

from linkserver import __version__

LEVELS = ["NONE", "NOTICE", "INFO", "WARNING", "ERROR", "FATAL"]
PERMISSIONS = ["none", "observer", "operator", "manager", "engineer", "admin"]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed JSON, wrong types, invalid filter or level",
        401: "Missing, unknown or expired token",
        403: "Forbidden by the user's grants",
        404: "Unknown (or invisible) context, definition or event",
        409: "Exists already",
        413: "Message or batch too large",
        422: "Data table invalid",
    }
    return {str(s): {"description": text[s], **_json(_ref("Error"))} for s in (401, *statuses)}


def _op(
    summary: str,
    needs: str,
    answer: dict[str, Any],
    *errors: int,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    status: int = 200,
    public: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Needs: {needs}.",
        "responses": {str(status): {"description": "OK", **_json(answer)}, **_errors(*errors)},
    }
    if public:
        op["security"] = []
        op["responses"].pop("401")
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _param(
    name: str, where: str, schema: dict[str, Any], text: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": text,
        "schema": schema,
    }


STR, INT, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
EVENT_ID = _param("id", "path", {"type": "integer", "format": "int64"}, "An event id")
CONTEXT_PATH = _param("path", "path", STR, "A dotted context path; 'root' for the root")

_HISTORY_PARAMS = [
    _param("mask", "query", {"type": "array", "items": STR}, "Context masks (repeatable); default '**'"),
    _param("event", "query", {"type": "array", "items": STR}, "Event names (repeatable); default all"),
    _param("filter", "query", STR, "A filter expression (docs/filters.md)"),
    _param("min_level", "query", {"enum": LEVELS}, "Lowest level, inclusive"),
    _param("max_level", "query", {"enum": LEVELS}, "Highest level, inclusive"),
    _param(
        "since", "query", {"type": "string", "format": "date-time"}, "Created at or after (with timezone)"
    ),
    _param("until", "query", {"type": "string", "format": "date-time"}, "Created before (with timezone)"),
    _param("group", "query", STR, "The definition's group"),
    _param("author", "query", STR, "Who fired the event"),
    _param("acknowledged", "query", BOOL, "Only acknowledged (true) or unacknowledged (false) events"),
    _param(
        "requires_acknowledgement", "query", BOOL, "Only events whose definition requires acknowledgement"
    ),
    _param("order", "query", {"enum": ["newest", "oldest"]}, "Order of the page; default newest"),
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 10000}, "Page size; default 100"),
    _param("cursor", "query", STR, "next_cursor of the previous page of the same query"),
    _param("count", "query", BOOL, "Also count every matching event"),
]

_SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        ["error"],
        error=_obj(
            ["type", "message"],
            type=STR,
            message=STR,
            fields={"type": "array", "items": _obj(["field", "message"], field=STR, message=STR)},
        ),
    ),
    "Acknowledgement": _obj(
        ["time", "user", "text"], time={"type": "string", "format": "date-time"}, user=STR, text=STR
    ),
    "Event": _obj(
        ["id", "context", "name", "level", "created", "data"],
        id={"type": "integer", "format": "int64"},
        context=STR,
        name=STR,
        level={"enum": LEVELS},
        created={"type": "string", "format": "date-time"},
        expires={"type": "string", "format": "date-time", "nullable": True},
        author={"type": "string", "nullable": True},
        group={"type": "string", "nullable": True},
        data={"type": "array", "items": {"type": "object"}},
        acknowledgements={"type": "array", "items": _ref("Acknowledgement")},
    ),
    "Field": _obj(
        ["name", "type", "description", "nullable"],
        name=STR,
        type={"enum": ["string", "integer", "float", "boolean", "datetime", "table"]},
        description=STR,
        nullable=BOOL,
        default={},
        allowed={"type": "array", "items": {}},
        min={"type": "number"},
        max={"type": "number"},
        pattern=STR,
        format=_ref("Format"),
    ),
    "Format": _obj(
        ["min_records", "max_records", "fields"],
        min_records=INT,
        max_records={"type": "integer", "nullable": True},
        fields={"type": "array", "items": _ref("Field")},
    ),
    "Definition": _obj(
        ["name", "level", "persistent", "permissions", "fire_permissions", "format"],
        name=STR,
        description=STR,
        help=STR,
        level={"enum": LEVELS},
        persistent=BOOL,
        expiration={"type": "number", "nullable": True, "description": "seconds"},
        permissions={"enum": PERMISSIONS},
        fire_permissions={"enum": PERMISSIONS},
        group={"type": "string", "nullable": True},
        hidden=BOOL,
        requires_acknowledgement=BOOL,
        format=_ref("Format"),
        retention={
            "type": "object",
            "nullable": True,
            "description": "in a context's listing: how long its events are kept there "
            "(the expiration table applied) and why; null if not persistent",
            "required": ["seconds", "source"],
            "properties": {
                "seconds": {"type": "number"},
                "source": {"enum": ["table", "definition", "default"]},
                "mask": {"type": "string", "description": "the table entry's mask (source table)"},
                "event": {"type": "string", "description": "the table entry's event (source table)"},
            },
        },
    ),
    "TreeNode": _obj(
        ["path", "name", "description", "children"],
        path=STR,
        name=STR,
        description=STR,
        children={
            "type": "array",
            "nullable": True,
            "items": _ref("TreeNode"),
            "description": "null where 'depth' stopped the walk",
        },
    ),
    "Context": _obj(
        ["path", "name", "description", "children", "events"],
        path=STR,
        name=STR,
        description=STR,
        children={"type": "array", "items": STR},
        events={"type": "array", "items": _ref("Definition")},
    ),
    "FireRequest": _obj(
        ["context", "event"],
        context=STR,
        event=STR,
        data={"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
        level={"oneOf": [{"enum": LEVELS}, {"type": "integer"}]},
        durable=BOOL,
    ),
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 document served at ``/openapi.json``."""
    event_answer = _obj(["event"], event=_ref("Event"))
    empty: dict[str, Any] = {"type": "object"}
    paths = {
        "/api/v1/login": {
            "post": _op(
                "Log in; fires 'login' in users.NAME",
                "nothing",
                _obj(["token", "user", "expires"], token=STR, user=STR, expires=STR),
                400,
                body=_obj(["user", "password"], user=STR, password=STR),
                public=True,
            )
        },
        "/api/v1/logout": {"post": _op("End the session; fires 'logout'", "a session token", empty)},
        "/api/v1/me": {
            "get": _op(
                "The current user and its grants",
                "any token",
                _obj(
                    ["user", "grants"],
                    user=STR,
                    component=BOOL,
                    grants={"type": "object", "additionalProperties": {"enum": PERMISSIONS}},
                ),
            )
        },
        "/api/v1/tree": {
            "get": _op(
                "The visible context tree",
                "observer somewhere below",
                _ref("TreeNode"),
                400,
                404,
                params=[
                    _param("path", "query", STR, "Where to start; default root"),
                    _param("depth", "query", INT, "How many levels below; default all"),
                ],
            )
        },
        "/api/v1/contexts": {
            "post": _op(
                "Add a context",
                "admin on the parent",
                _obj(["path"], path=STR),
                400,
                403,
                404,
                409,
                body=_obj(["path"], path=STR, template=STR, description=STR),
                status=201,
            )
        },
        "/api/v1/contexts/{path}": {
            "get": _op(
                "A context with its visible definitions and formats",
                "observer (or a grant below)",
                _ref("Context"),
                400,
                404,
                params=[CONTEXT_PATH],
            ),
            "delete": _op(
                "Remove a context and its subtree",
                "admin",
                _obj(["removed"], removed={"type": "array", "items": STR}),
                400,
                403,
                404,
                params=[CONTEXT_PATH],
            ),
        },
        "/api/v1/fire": {
            "post": _op(
                "Fire one event",
                "the definition's fire_permissions",
                event_answer,
                400,
                403,
                404,
                413,
                422,
                body=_ref("FireRequest"),
            )
        },
        "/api/v1/fire/batch": {
            "post": _op(
                "Fire events in order; each answered with its event or its error",
                "each as /fire",
                _obj(
                    ["results"], results={"type": "array", "items": {"oneOf": [event_answer, _ref("Error")]}}
                ),
                400,
                413,
                body=_obj(["events"], events={"type": "array", "items": _ref("FireRequest")}, durable=BOOL),
            )
        },
        "/api/v1/history": {
            "get": _op(
                "Query history (only events the user may receive)",
                "receive permissions per event",
                _obj(
                    ["events", "next_cursor"],
                    events={"type": "array", "items": _ref("Event")},
                    next_cursor={"type": "string", "nullable": True},
                    count=INT,
                ),
                400,
                params=_HISTORY_PARAMS,
            )
        },
        "/api/v1/events/{id}": {
            "get": _op(
                "One stored event with its acknowledgements",
                "receive permissions",
                event_answer,
                400,
                404,
                params=[EVENT_ID],
            ),
            "delete": _op("Delete a stored event", "manager", empty, 400, 403, 404, params=[EVENT_ID]),
        },
        "/api/v1/events/{id}/acknowledge": {
            "post": _op(
                "Acknowledge a stored event",
                "operator",
                event_answer,
                400,
                403,
                404,
                body=_obj(["text"], text=STR),
                params=[EVENT_ID],
            )
        },
        "/api/v1/purge": {
            "post": _op("Purge expired events now", "engineer on root", _obj(["removed"], removed=INT), 403)
        },
        "/api/v1/ws": {
            "get": _op(
                "WebSocket session (token in ?token= or the Authorization header); see docs/protocol.md",
                "any token",
                empty,
                params=[_param("token", "query", STR, "A session or API token")],
                status=101,
            )
        },
        "/openapi.json": {"get": _op("This document", "nothing", empty, public=True)},
        "/metrics": {
            "get": {
                "summary": "Metrics in the Prometheus text format (docs/server.md)",
                "description": "Needs: observer on root, or nothing with server.metrics: open.",
                "responses": {
                    "200": {"description": "OK", "content": {"text/plain": {"schema": STR}}},
                    **_errors(403),
                },
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "LinkServer network API",
            "version": __version__,
            "description": "Protocol v1; see docs/protocol.md. Errors are {error: {type, message, fields?}}.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
