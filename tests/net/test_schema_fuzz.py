"""Schemathesis against a live server, driven by the server's own /openapi.json.

Every operation gets a few generated requests (positive and negative data);
each answer must pass schemathesis' checks: never a 5xx, a documented status
and content type, an answer that fits its declared shape, a 405 with
``Allow`` for a method the path does not take. Bounded: a few examples per
operation, well under a minute for the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from net_helpers import TLS, Live, write_config

EXAMPLES = 12


@schemathesis.check
def shape_accepted(ctx: Any, response: Any, case: Any) -> None:
    """A request that fits the document is never refused for its shape (type ``BadRequest``).

    Schemathesis' own positive-data check also counts a 400 for what a value *means* (a
    filter that does not parse, a cursor from nowhere) and a 422 for data that does not fit
    the definition's format: those have types of their own and are not the document's
    business. A ``BadRequest`` for schema-valid input is: the document and the decoder differ.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return None
    error = response.json().get("error", {})
    if error.get("type") == "BadRequest":
        raise AssertionError(f"a request that fits the document was refused: {error.get('message')}")
    return None


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A server of its own, on SQLite (ids reach the SQL layer), that the fuzzing may change."""
    directory: Path = tmp_path_factory.mktemp("fuzz")
    # The fuzzing sends unknown tokens and wrong current passwords by the hundred: no back-off
    # here (tests/net/test_session_end.py tests it), or the checks would meet 429s.
    unthrottled = (
        "auth:\n  throttle: {user_failures: 1000000, address_failures: 1000000, token_failures: 1000000}\n"
    )
    server = Live(
        write_config(directory, database_url=f"sqlite:///{directory / 'history.sqlite3'}", extra=unthrottled)
    )
    server.server.fire(server.new_device(), "connected", durable=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(target: Live) -> Any:
    document = httpx.get(f"{target.url}/openapi.json", verify=TLS).json()
    return schemathesis.openapi.from_dict(document)


def operations() -> list[str]:
    from linkserver.wire.routes import OPERATIONS

    return [f"{op.method} {op.url}" for op in OPERATIONS if op.name not in ("logout", "purge")]


@pytest.mark.parametrize("operation", operations())
def test_generated_requests_find_nothing(api: Any, target: Live, operation: str) -> None:
    method, path = operation.split(" ")
    strategy = api[path][method].as_strategy()
    headers = {"Authorization": f"Bearer {target.token('admin')}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=target.url,
            headers=headers,
            excluded_checks=[schemathesis.checks.positive_data_acceptance],
        )

    run()
