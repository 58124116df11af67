"""Errors raised by the client itself, and the mapping of server error answers back to classes.

An error answer of the server (``{"error": {"type", "message", "fields"?}}``)
becomes the LinkServer class of the same name when the client knows it
(``ContextNotFound``, ``DataTableError``, ``PermissionDenied``...), so code
written against the in-process server catches the same exceptions remotely.
Unknown types become the class the status stands for
(:mod:`linkserver.wire.errors`), else a :class:`RequestError`.
"""

from __future__ import annotations

import importlib
from typing import Any

from linkserver.core.errors import (
    AuthenticationFailed,
    BadRequest,
    DataTableError,
    FieldError,
    FilterError,
    LinkServerError,
    NotFound,
    PermissionDenied,
    TooLarge,
)
from linkserver.wire.errors import class_of_status

__all__ = [  # the errors of the wire (linkserver.core.errors) are the client's too
    "AuthenticationFailed",
    "BadRequest",
    "ClientError",
    "Conflict",
    "NotFound",
    "ProtocolError",
    "RequestError",
    "ServerError",
    "ServerTimeout",
    "ServerUnavailable",
    "TooLarge",
    "error_from_answer",
]


class ClientError(LinkServerError):
    """Base class of the errors the client raises on its own account.

    ``status`` is the HTTP status of the answer (None when there was none),
    ``type`` the error type the server named (None when it named none).
    """

    status: int | None = None
    type: str | None = None


class ServerUnavailable(ClientError, ConnectionError):
    """The server cannot be reached (refused, timed out, connection lost)."""

    def __init__(self, url: str, reason: str = "") -> None:
        self.url = url
        self.reason = reason
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot reach LinkServer at {url}{detail}: is it running? start it with 'linkserver serve'"
        )


class ServerTimeout(ServerUnavailable, TimeoutError):
    """The server took the connection, then answered nothing (or read nothing) for the client's
    timeout; ``reason`` says what it did not do."""

    def __init__(self, url: str, what: str, timeout: float) -> None:
        self.url = url
        self.reason = what
        self.timeout = timeout
        ClientError.__init__(
            self,
            f"LinkServer at {url} {what} for {timeout:g} s, the client's timeout; if it is only "
            "slow, give the client a longer one (Client(url, timeout=60))",
        )


class RequestError(ClientError, ValueError):
    """The server refused a request with an error type and status the client does not know."""


class Conflict(RequestError):
    """HTTP 409: what was to be created exists already."""


class ServerError(ClientError, RuntimeError):
    """HTTP 5xx, or an answer the client cannot make sense of."""


class ProtocolError(ServerError):
    """The server answered something that does not follow docs/protocol.md."""


# Error classes defined outside linkserver.core.errors (imported on first use only:
# linkserver.history pulls in SQLAlchemy).
_ELSEWHERE = {
    "InvalidLevel": "linkserver.core.levels",
    "InvalidDuration": "linkserver.core.durations",
    "EmptyAcknowledgement": "linkserver.server.access",
    "ControllerError": "linkserver.server.controllers",
    "InvalidAcknowledgement": "linkserver.history.errors",
    "InvalidCursor": "linkserver.history.errors",
    "InvalidQuery": "linkserver.history.errors",
    "UnstorableEvent": "linkserver.history.errors",
    "InvalidTransition": "linkserver.core.statemachines",
    "NotAResource": "linkserver.core.statemachines",
    "InvalidCategory": "linkserver.core.categories",
    "JobError": "linkserver.core.jobs",
    "JobExists": "linkserver.core.jobs",
    "JobNotFound": "linkserver.core.jobs",
}


def _known_class(name: str) -> type[LinkServerError] | None:
    if not isinstance(name, str) or not name.isidentifier():
        return None
    if name in globals() and isinstance(globals()[name], type):
        cls = globals()[name]
    else:
        module_name = _ELSEWHERE.get(name, "linkserver.core.errors")
        try:
            cls = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            return None
    if isinstance(cls, type) and issubclass(cls, LinkServerError):
        return cls
    return None


def _field_errors(fields: Any, message: str) -> list[FieldError]:
    problems: list[FieldError] = []
    for item in fields if isinstance(fields, list) else ():
        if isinstance(item, dict):
            name = str(item.get("field") or item.get("name") or "?")
            problems.append(FieldError(name, str(item.get("message") or "invalid")))
        else:
            problems.append(FieldError(str(item), "invalid"))
    return problems


def error_from_answer(status: int | None, body: Any) -> LinkServerError:
    """The exception for an error answer ``body`` (the JSON document or its ``error`` member).

    Never raises itself: a body of an unexpected shape gives a :class:`ServerError`
    (5xx) or the :class:`RequestError` of the status.
    """
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = f"HTTP {status}" if status else "error"
        return _plain(
            ServerError if not status or status >= 500 else _by_status(status),
            f"the server answered {text} without an error message",
            status,
            None,
        )
    kind = error.get("type")
    message = str(error.get("message") or kind or f"HTTP {status}")
    fields = error.get("fields")
    if status == 401:
        return _plain(AuthenticationFailed, message, status, kind)
    cls = _known_class(kind) if kind else None
    if cls is not None and issubclass(cls, DataTableError):
        exc: Any = cls.__new__(cls)  # built without __init__: the server wrote the message
        exc.problems = _field_errors(fields, message)
        exc.where = ""
        Exception.__init__(exc, message)
    elif cls is not None:
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        if issubclass(cls, FilterError):
            exc.message, exc.expression, exc.column = message, "", None
    elif status == 403:
        exc = PermissionDenied(message)
    elif status == 422:
        exc = DataTableError.__new__(DataTableError)
        exc.problems = _field_errors(fields, message)
        exc.where = ""
        Exception.__init__(exc, message)
    elif status is not None and status >= 500:
        return _plain(ServerError, message, status, kind)
    else:
        return _plain(_by_status(status), message, status, kind)
    exc.status = status
    exc.type = kind
    if fields is not None:
        exc.fields_detail = fields
    return exc  # type: ignore[no-any-return]


def _by_status(status: int | None) -> type[Exception]:
    if status == 409:
        return Conflict
    return class_of_status(status) or RequestError


def _plain(cls: type[Exception], message: str, status: int | None, kind: Any) -> Any:
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.status = status
    exc.type = kind if isinstance(kind, str) else None
    return exc
