"""Keeps every test run away from the user's own LinkServer state.

Servers that tests start announce themselves in ``$XDG_STATE_HOME`` (see
linkserver.runtime); a directory of this run's own keeps them from
the user's list, from other runs on the same machine, and the other way round.
The command line keeps session tokens in a file (linkserver.client.sessions):
one per test here, so tests never share a login.

Password hashes made in this process cost scrypt N=2**10 instead of the default
2**14 (:data:`linkserver.server.passwords.SCRYPT_N`): each of a server's admin
credentials, dummy hash and every login checking them took 0.1-0.25 s of CPU
(186 hashes in tests/client alone, a quarter of its time). The hashes are real
scrypt hashes, verified the same way; a test marked ``real_password_cost``
gets the default (the tests of the default itself). Servers started as processes
of their own keep the default.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from linkserver.server import passwords

QUICK_SCRYPT_N = 2**10

# Property tests check answers, not speed: on this shared 2-core machine (and in CI beside the
# services) input generation is sometimes slow, which is no failure of the code under test.
settings.register_profile("linkserver", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("linkserver")
passwords.hash_password.__kwdefaults__["n"] = QUICK_SCRYPT_N  # see the module's docstring

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_password_cost: hash passwords at the default scrypt cost")


@pytest.fixture(autouse=True)
def _password_cost(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("real_password_cost") is not None:
        monkeypatch.setitem(passwords.hash_password.__kwdefaults__, "n", passwords.SCRYPT_N)
