"""Fixtures of the client tests: a live server per test (see client_helpers.LiveServer)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import LiveServer


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    for name in ("LINKSERVER_URL", "LINKSERVER_TOKEN", "LINKSERVER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    server = LiveServer(tmp_path / "data")
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(server.credentials_path))
    server.start_http()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def client(live: LiveServer) -> Iterator[Any]:
    from linkserver.client import Client

    with Client(live.url) as client:
        yield client


@pytest.fixture
def unused_url() -> str:
    """An address where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
