"""Keeps every test run away from the user's own LinkServer state.

Servers that tests start announce themselves in ``$XDG_STATE_HOME`` (see
linkserver.runtime); a directory of this run's own keeps them from
the user's list, from other runs on the same machine, and the other way round.
The command line keeps session tokens in a file (linkserver.client.sessions):
one per test here, so tests never share a login.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="linkserver-test-state-")
for name in ("LINKSERVER_DATA_DIR", "LINKSERVER_LISTEN", "LINKSERVER_CONFIG"):
    os.environ.pop(name, None)


@pytest.fixture(autouse=True)
def _private_session_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("state") / "sessions.json"
    monkeypatch.setenv("LINKSERVER_SESSIONS", str(path))
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the spare PostgreSQL schemas of tests/node_processes.py's pool (if it was used)."""
    node_processes = sys.modules.get("node_processes")
    if node_processes is not None:
        node_processes.close_schema_pool()
