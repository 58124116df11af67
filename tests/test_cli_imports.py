"""The CLI's client commands and the clients load no server-side dependency.

Each check runs in a fresh interpreter (this process has long imported
everything). Nothing here measures time: tools/bench/cli.py does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_SIDE = ("sqlalchemy", "alembic", "starlette", "uvicorn", "apscheduler", "prometheus_client")
# What a one-shot HTTP command (fire, history, ack, tree, status) has no use for.
ONE_SHOT_NEEDLESS = (
    "asyncio",
    "websockets",
    "linkserver.server",
    "linkserver.core.formats",
    # the server's half of linkserver.wire.errors (issue #8: ~25 ms of every `linkserver fire`)
    "linkserver.core.jobs",
    "linkserver.core.statemachines",
)


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def offending(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize(
    "code",
    [
        "import linkserver.client",
        "from linkserver.client import Client, AsyncClient, Subscription, FireSession",
        "import linkserver.client.aio, linkserver.client.sync, linkserver.client.sync_ws",
        "import linkserver.client.controllers",
        "import linkserver.cli; linkserver.cli.build_parser()",
        "import linkserver.shell.main",
    ],
)
def test_clients_and_cli_import_no_server_dependency(code: str) -> None:
    assert offending(loaded_after(code), SERVER_SIDE) == []


def test_a_one_shot_command_loads_no_websocket_or_server_module() -> None:
    """What `linkserver history` imports before its request: the parser, the client, its answers."""
    code = (
        "import linkserver.cli; linkserver.cli.build_parser()\n"
        "import linkserver.client.sync, linkserver.client.status\n"
        "from linkserver.client.transport import parse_page"
    )
    assert offending(loaded_after(code), ONE_SHOT_NEEDLESS) == []


def test_a_command_run_with_a_token_loads_no_session_cache() -> None:
    """`linkserver fire ... --token T` as the console script runs it, up to its request."""
    code = (
        "import argparse, linkserver.cli, linkserver.client.cli as c\n"
        "argv = ['fire', 'a', 'b', '--url', 'http://127.0.0.1:1', '--token', 't']\n"
        "args = linkserver.cli.build_parser(linkserver.cli._command_of(argv)).parse_args(argv)\n"
        "c._client(args).close()"
    )
    needless = (*ONE_SHOT_NEEDLESS, "linkserver.client.sessions", "httpx._main", "click", "rich")
    assert offending(loaded_after(code), needless) == []


def test_httpx_main_stays_importable_after_the_cli_skipped_it() -> None:
    """The CLI keeps httpx from importing httpx._main (click and rich); the rest is there."""
    code = (
        "from linkserver.client.cli import _import_httpx; _import_httpx()\n"
        "import httpx; httpx.Client(base_url='http://127.0.0.1:1').close()\n"
        "import httpx._main"  # still importable by whoever wants it
    )
    assert "httpx._main" in loaded_after(code)


@pytest.mark.parametrize(
    "code",
    [
        "import linkserver.typing",
        "import linkserver.client, linkserver.client.aio, linkserver.client.sync_ws",
        "import linkserver.client.controllers",
        "from linkserver import Gap, Listener, DeviceController, DeviceHandle, Bridge, BridgeHandle",
    ],
)
def test_the_plugin_shapes_and_the_clients_import_no_server_module(code: str) -> None:
    """The Protocols users implement live in linkserver.typing, not in the server package."""
    assert offending(loaded_after(code), ("linkserver.server", *SERVER_SIDE)) == []


def test_the_checks_can_fail() -> None:
    """A module that does load a server dependency is caught (the probe is not blind)."""
    assert offending(loaded_after("import linkserver.server.app"), SERVER_SIDE)
    assert offending(loaded_after("import linkserver.client.aio"), ONE_SHOT_NEEDLESS)
    server_side_statuses = "from linkserver.wire.errors import status_of; status_of(ValueError())"
    assert offending(loaded_after(server_side_statuses), ("linkserver.core.jobs",))
