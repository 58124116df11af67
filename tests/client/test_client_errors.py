"""Server error answers become the LinkServer classes of the same name."""

from __future__ import annotations

import pytest

from linkserver.client.errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    NotFound,
    RequestError,
    ServerError,
    ServerUnavailable,
    TooLarge,
    error_from_answer,
)
from linkserver.client.transport import response_error
from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    DataTableError,
    EventNotDefined,
    FilterError,
    LinkServerError,
    PermissionDenied,
)
from linkserver.core.levels import InvalidLevel


def answer(kind: str, message: str = "it went wrong", **extra: object) -> dict[str, object]:
    return {"error": {"type": kind, "message": message, **extra}}


@pytest.mark.parametrize(
    ("kind", "status", "cls"),
    [
        ("ContextNotFound", 404, ContextNotFound),
        ("EventNotDefined", 404, EventNotDefined),
        ("ContextExists", 409, ContextExists),
        ("PermissionDenied", 403, PermissionDenied),
        ("FilterError", 400, FilterError),
        ("InvalidLevel", 400, InvalidLevel),
    ],
)
def test_known_types_map_to_their_classes_with_the_server_message(kind: str, status: int, cls: type) -> None:
    error = error_from_answer(status, answer(kind, "the server's words"))
    assert type(error) is cls
    assert str(error) == "the server's words"
    assert error.status == status and error.type == kind


def test_history_errors_map_too() -> None:
    from linkserver.history.errors import InvalidCursor

    assert type(error_from_answer(400, answer("InvalidCursor"))) is InvalidCursor


def test_data_table_errors_keep_the_field_names() -> None:
    fields = [{"field": "value", "message": "expected a float"}, "unit"]
    error = error_from_answer(422, answer("DataTableError", "invalid data: value, unit", fields=fields))
    assert isinstance(error, DataTableError)
    assert error.fields == ["value", "unit"]
    assert str(error) == "invalid data: value, unit"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (404, NotFound),
        (409, Conflict),
        (413, TooLarge),
        (418, RequestError),
        (500, ServerError),
    ],
)
def test_unknown_types_fall_back_by_status(status: int, cls: type) -> None:
    error = error_from_answer(status, answer("SomethingNew"))
    assert type(error) is cls and isinstance(error, LinkServerError)
    assert error.type == "SomethingNew" and error.status == status


def test_the_wire_errors_are_one_set_of_classes_for_server_and_client() -> None:
    from linkserver.core import errors as core
    from linkserver.net import codec

    for name in ("BadRequest", "NotFound", "TooLarge", "AuthenticationFailed"):
        assert getattr(codec, name) is getattr(core, name)
        assert error_from_answer(400, answer(name)).__class__ is getattr(core, name)


def test_401_is_always_authentication_failed() -> None:
    error = error_from_answer(401, answer("AuthenticationError", "wrong user or password"))
    assert isinstance(error, AuthenticationFailed) and isinstance(error, PermissionError)
    assert str(error) == "wrong user or password"


def test_403_and_422_of_unknown_types_keep_their_meaning() -> None:
    assert isinstance(error_from_answer(403, answer("Nope")), PermissionDenied)
    assert isinstance(error_from_answer(422, answer("Nope", fields=["a"])), DataTableError)


def test_answers_without_json_are_still_errors() -> None:
    assert isinstance(response_error(502, "<html>bad gateway</html>"), ServerError)
    assert isinstance(response_error(404, ""), NotFound)
    assert isinstance(error_from_answer(None, None), ServerError)


def test_unreachable_message_says_how_to_start_the_server() -> None:
    error = ServerUnavailable("http://127.0.0.1:7341", "ConnectError")
    assert isinstance(error, LinkServerError) and isinstance(error, ConnectionError)
    assert "cannot reach LinkServer at http://127.0.0.1:7341" in str(error)
    assert "start it with 'linkserver serve'" in str(error)


def test_names_that_are_not_error_classes_are_not_imported() -> None:
    assert type(error_from_answer(400, answer("os.system"))) is BadRequest
    assert type(error_from_answer(400, answer("Event"))) is BadRequest
