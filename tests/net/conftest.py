"""Fixtures of the network tests.

``live`` is one real server shared by the whole session (memory history;
tests keep apart by using contexts of their own, see ``device``);
``make_live`` starts a fresh one with other options (SQLite history, small
limits, short sessions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from net_helpers import Live, write_config


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("live")
    server = Live(write_config(directory))
    yield server
    server.stop()


@pytest.fixture
def make_live(tmp_path: Path) -> Iterator[Callable[..., Live]]:
    started: list[Live] = []

    def make(*, database_url: str = "memory://", extra: str = "", **kwargs: Any) -> Live:
        directory = tmp_path / f"server{len(started)}"
        directory.mkdir()
        if database_url == "sqlite":
            database_url = f"sqlite:///{directory / 'data' / 'history.sqlite3'}"
        server = Live(write_config(directory, database_url=database_url, extra=extra), **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def device(live: Live) -> str:
    return live.new_device()
