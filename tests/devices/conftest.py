"""Fixtures of the device controller tests: the test broker, a topic prefix per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mqtt_helpers import Mosquitto, Publisher, broker_url, unique_prefix


@pytest.fixture
def mqtt_url() -> str:
    return broker_url()


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def publisher(mqtt_url: str) -> Iterator[Publisher]:
    with Publisher(mqtt_url) as client:
        yield client


@pytest.fixture
def own_mosquitto() -> Iterator[Mosquitto]:
    """A broker of the test's own (not yet started), for outages."""
    broker = Mosquitto()
    yield broker
    broker.stop()
