"""Fixtures of the bridge tests: a real server on SQLite, and the broker side of each bridge."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridges.bridge_sides import INGEST, BrokerSide, MemorySide
from linkserver.core.levels import Permission
from linkserver.core.permissions import Grants
from linkserver.loading import ServerConfig, load_all
from linkserver.loading.config import UserConfig
from linkserver.server.app import LinkServer

RABBITMQ_URL = os.environ.get("LINKSERVER_TEST_RABBITMQ_URL")
MQTT_URL = os.environ.get("LINKSERVER_TEST_MQTT_URL")

SIDES = [
    pytest.param("memory", id="memory"),
    pytest.param(
        "amqp",
        id="amqp",
        marks=[pytest.mark.skipif(not RABBITMQ_URL, reason="LINKSERVER_TEST_RABBITMQ_URL is not set")],
    ),
    pytest.param(
        "mqtt",
        id="mqtt",
        marks=[pytest.mark.skipif(not MQTT_URL, reason="LINKSERVER_TEST_MQTT_URL is not set")],
    ),
]


def make_side(kind: str) -> BrokerSide:
    if kind == "memory":
        return MemorySide()
    if kind == "mqtt":
        from bridges.mqtt_side import MqttSide

        assert MQTT_URL is not None
        return MqttSide(MQTT_URL)  # set and unreachable: fails here, never skips
    from bridges.amqp_side import AmqpSide

    assert RABBITMQ_URL is not None
    return AmqpSide(RABBITMQ_URL)  # set and unreachable: fails here, never skips


@pytest.fixture(params=SIDES)
def side(request: pytest.FixtureRequest) -> Iterator[BrokerSide]:
    made = make_side(request.param)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LinkServer]]:
    """``make(**config changes)``: a started LinkServer on SQLite in ``tmp_path`` (stopped after)."""
    _, catalog = load_all()
    started: list[LinkServer] = []

    def make(**changes: Any) -> LinkServer:
        users = {
            "admin": UserConfig(name="admin", grants=Grants({"**": Permission.ADMIN})),
            INGEST: UserConfig(name=INGEST, grants=Grants({"devices.**": Permission.OPERATOR})),
        }
        config = ServerConfig.default(data_dir=tmp_path / "data", users=users, **changes)
        server = LinkServer(config, catalog).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def own_mosquitto() -> Iterator[Any]:
    """A Mosquitto of the test's own on a free port (not yet started), for outages."""
    from mqtt_helpers import Mosquitto

    broker = Mosquitto()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt() -> Iterator[Any]:
    """The bridges' test side on the shared Mosquitto (tests skip without LINKSERVER_TEST_MQTT_URL)."""
    from bridges.mqtt_side import MqttSide

    assert MQTT_URL is not None
    side = MqttSide(MQTT_URL)
    yield side
    side.close()
