"""An answer that says only "the server failed to handle the request; see its log" (an exception
that is not one of LinkServer's) has the exception in the log, whatever its status."""

from __future__ import annotations

import json
import logging

import pytest

from linkserver.core.errors import BadRequest
from linkserver.net.app import error_response


@pytest.mark.parametrize("exc", [ValueError("bad value deep inside"), RuntimeError("broken")])
def test_an_unexpected_exception_is_logged_with_its_traceback(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="linkserver.net"):
        response = error_response(exc)
    body = json.loads(bytes(response.body))
    assert body["error"]["type"] == "InternalError" and "see its log" in body["error"]["message"]
    (record,) = [r for r in caplog.records if r.name == "linkserver.net"]
    assert record.exc_info is not None and record.exc_info[1] is exc


def test_linkservers_own_errors_are_answered_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="linkserver.net"):
        response = error_response(BadRequest("'limit' must be positive"))
    assert response.status_code == 400 and not caplog.records
