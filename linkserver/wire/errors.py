"""Which error is which HTTP status: the one table, read by the server and by the clients.

The server answers an exception with the status of the first row its class
matches (:func:`status_of`); a client that gets an error type it does not
know falls back to the class of the status (:func:`class_of_status`).
"""

from __future__ import annotations

import functools

from linkserver.core.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextExists,
    DataTableError,
    HistoryUnavailable,
    NotFound,
    PermissionDenied,
    ServerStopped,
    TooLarge,
    TooManyAttempts,
    UserExists,
)


@functools.cache
def status_table() -> tuple[tuple[type[BaseException], int], ...]:
    """(class, status), most specific first.

    Built on first use: only the server needs it, and the job and state-machine
    classes would cost every ``linkserver fire`` process their modules (and attrs)
    for nothing (tests/test_cli_imports.py).
    """
    from linkserver.core.jobs import JobError, JobExists
    from linkserver.core.statemachines import InvalidTransition

    return (
        (AuthenticationFailed, 401),
        (InvalidTransition, 409),  # a ValueError: the request is fine, the resource's state is not
        (JobError, 409),  # likewise: the job's status is not
        (JobExists, 409),
        (TooManyAttempts, 429),  # a PermissionError, like PermissionDenied
        (UserExists, 409),  # a ValueError
        (PermissionDenied, 403),
        (TooLarge, 413),
        (DataTableError, 422),
        (ContextExists, 409),
        (LookupError, 404),  # ContextNotFound, EventNotDefined, EventNotFound, TemplateNotFound, NotFound
        (ValueError, 400),  # BadRequest, FilterError, InvalidName, InvalidLevel, InvalidQuery, ...
        (HistoryUnavailable, 503),
        (ServerStopped, 503),
    )


# What a client makes of a status whose error type it does not know.
BY_STATUS: dict[int, type[Exception]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    413: TooLarge,
    429: TooManyAttempts,
}


def status_of(exc: BaseException) -> int:
    """The HTTP status of an exception (500 for anything unexpected)."""
    for cls, status in status_table():
        if isinstance(exc, cls):
            return status
    return 500


def class_of_status(status: int | None) -> type[Exception] | None:
    return BY_STATUS.get(status or 0)
