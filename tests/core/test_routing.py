"""Routing keys from templates, binding keys from masks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.core.routing import CLOUDSTACK, TemplateError, binding_key, check_template, router


def event(context: str, name: str = "overheated") -> Event:
    now = datetime.now(UTC)
    return Event(1, context, name, Level.WARNING, now, None, None, None, ())


def category(_: Event) -> str:
    return "AlertEvent"


@pytest.mark.parametrize(
    ("template", "context", "key"),
    [
        ("default", "devices.pump7", "devices.pump7.overheated"),
        ("default", "", "overheated"),
        ("cloudstack", "devices.pump7", "node1.AlertEvent.overheated.devices.pump7"),
        ("cloudstack", "site.devices.pump7", "node1.AlertEvent.overheated.devices.pump7"),
        ("cloudstack", "pumps", "node1.AlertEvent.overheated.root.pumps"),
        ("{level}.{path}", "devices.pump7", "WARNING.devices.pump7"),
        ("{source}.{path}.{event}", "", "node1.overheated"),
    ],
)
def test_a_template_builds_the_routing_key(template: str, context: str, key: str) -> None:
    assert router(template, "node1", category)(event(context)) == key


def test_an_mqtt_bridge_gets_slash_separated_topics() -> None:
    assert router("default", "n", category, "/")(event("devices.pump7")) == "devices/pump7/overheated"
    assert router(CLOUDSTACK, "n", category, "/")(event("devices.p")) == "n/AlertEvent/overheated/devices/p"


@pytest.mark.parametrize(
    ("mask", "name", "key"),
    [
        ("devices.*", "overheated", "devices.*.overheated"),
        ("devices.**", "*", "devices.#.*"),
        ("**", "serverStarted", "#.serverStarted"),
        ("users.*.devices.**", "error", "users.*.devices.#.error"),
        ("root", "serverStarted", "serverStarted"),
    ],
)
def test_a_mask_becomes_a_binding_key(mask: str, name: str, key: str) -> None:
    assert binding_key(mask, name) == key


def test_an_unknown_placeholder_is_named_with_the_known_ones() -> None:
    with pytest.raises(TemplateError, match=r"unknown 'colour'.*\{path\}.*cloudstack"):
        check_template("{path}.{colour}")
    with pytest.raises(TemplateError, match="names nothing"):
        check_template("fixed")
