"""The OpenAPI 3.1 document of the HTTP API, made from the declarations the server checks with.

Paths, methods and statuses come from :data:`linkserver.wire.routes.OPERATIONS`,
every schema from :mod:`linkserver.wire.shapes` (msgspec writes JSON Schema
2020-12, the dialect of OpenAPI 3.1). Nothing here is written by hand that
the server could check differently.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from linkserver import __version__
from linkserver.wire import shapes
from linkserver.wire.routes import ERROR_TEXT, OPERATIONS, Operation

_REF = "#/components/schemas/{name}"


def _components() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    types: list[Any] = [shapes.ErrorAnswer, shapes.FireItem]
    for op in OPERATIONS:
        types += [t for t in (op.answer, op.body, op.query, op.path_params) if t is not None]
    refs, schemas = msgspec.json.schema_components(types, ref_template=_REF)
    return dict(zip(map(id, types), refs, strict=True)), schemas  # type: ignore[arg-type]


def _parameters(shape: type, where: str, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    component = schemas[shape.__name__]
    required = set(component.get("required", ()))
    out = []
    for name, schema in component["properties"].items():
        schema = _not_null(dict(schema))
        text = schema.pop("description", None) or _described(schema)
        param: dict[str, Any] = {"name": name, "in": where, "required": name in required or where == "path"}
        if text:
            param["description"] = text
        param["schema"] = schema
        if schema.get("type") == "array":
            param["style"], param["explode"] = "form", True
        out.append(param)
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or text, never null: drop the null alternative of optional ones."""
    options = [o for o in schema.get("anyOf", ()) if o != {"type": "null"}]
    if "anyOf" in schema and len(options) < len(schema["anyOf"]):
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
        schema = {**options[0], **rest} if len(options) == 1 else {"anyOf": options, **rest}
    elif schema.get("default", 0) is None:
        schema.pop("default")
    return schema


def _described(schema: dict[str, Any]) -> str | None:
    for option in schema.get("anyOf", ()):
        if "description" in option:
            return str(option["description"])
    return None


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(op: Operation, refs: dict[int, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    # Any token may be refused (401), and unknown ones are throttled per address (429).
    errors = sorted({*op.errors, *(() if op.public else (401, 429))})
    responses: dict[str, Any] = {str(op.status): {"description": "OK", **_json(refs[id(op.answer)])}}
    for status in errors:
        responses[str(status)] = {"description": ERROR_TEXT[status], **_json(refs[id(shapes.ErrorAnswer)])}
    document: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": f"Needs: {op.needs}.",
        "responses": responses,
    }
    parameters = []
    if op.path_params is not None:
        parameters += _parameters(op.path_params, "path", schemas)
    if op.query is not None:
        parameters += _parameters(op.query, "query", schemas)
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {"required": True, **_json(refs[id(op.body)])}
    if op.public:
        document["security"] = []
    return document


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document served at ``/openapi.json``."""
    refs, schemas = _components()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.url, {})[op.method.lower()] = _operation(op, refs, schemas)
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OK", **_json({"type": "object"})}},
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "summary": "Metrics in the Prometheus text format (docs/server.md)",
            "description": "Needs: observer on root, or nothing with server.metrics: open.",
            "responses": {
                "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **{
                    str(status): {"description": ERROR_TEXT[status], **_json(refs[id(shapes.ErrorAnswer)])}
                    for status in (401, 403)
                },
            },
        }
    }
    paths["/"] = {  # linkserver/web: the console's page and files, for browsers (docs/web.md)
        "get": {
            "operationId": "console",
            "summary": "The web console (an HTML page using this API)",
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}
            },
        }
    }
    paths["/web/{name}"] = {
        "get": {
            "operationId": "console_file",
            "summary": "A file of the web console (ES module, style sheet, icon)",
            "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}},
                "404": {"description": "No such file", **_json(refs[id(shapes.ErrorAnswer)])},
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LinkServer network API",
            "version": __version__,
            "description": (
                "Protocol v1; see docs/protocol.md. Errors are {error: {type, message, fields?}}. "
                "The WebSocket session is at /api/v1/ws?token=T; its messages are the schemas "
                "FireMessage, FireBatchMessage, SubscribeMessage, UnsubscribeMessage and PingMessage."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {**schemas, **_message_schemas()},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _message_schemas() -> dict[str, Any]:
    _, schemas = msgspec.json.schema_components([shapes.ClientMessage], ref_template=_REF)
    return schemas
