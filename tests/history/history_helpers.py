"""Helpers shared by the history tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from linkserver.core.events import Event, IdGenerator
from linkserver.core.levels import Level
from linkserver.history.base import HistoryStore

POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")
BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="LINKSERVER_TEST_POSTGRES_URL is not set"),
        ],
    ),
]
SQL_BACKENDS = BACKENDS[1:]


class EventMaker:
    """Events with time-ordered ids on a fake clock: each event 1 ms after the previous."""

    def __init__(self, start: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) -> None:
        self.ms = int(start.timestamp() * 1000)
        self._ids = IdGenerator(node_id=3, clock_ms=lambda: self.ms)

    def __call__(
        self,
        context: str = "devices.plc7",
        name: str = "alarm",
        level: Level = Level.INFO,
        *,
        data: tuple[dict[str, Any], ...] = ({"x": 1},),
        author: str | None = "alice",
        group: str | None = None,
        lifetime: timedelta | None = timedelta(days=10),
        step_ms: int = 1,
    ) -> Event:
        self.ms += step_ms
        event_id, ms = self._ids.next()
        created = datetime.fromtimestamp(ms / 1000, UTC)
        return Event(
            id=event_id,
            context=context,
            name=name,
            level=level,
            created=created,
            expires=None if lifetime is None else created + lifetime,
            author=author,
            group=group,
            data=data,
        )


def store_all(store: HistoryStore, events: list[Event], **options: Any) -> None:
    futures = [store.append(event, **options) for event in events]
    for future in futures:
        future.result(timeout=30)
