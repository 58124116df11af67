"""The bridges: section: read like every section, each mistake at its file:line:column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from linkserver.core.errors import ConfigError
from linkserver.core.levels import Level
from linkserver.core.routing import CLOUDSTACK
from linkserver.loading import load_config_text

AT = "/etc/linkserver/linkserver.yaml:"


def read(text: str):  # noqa: ANN201
    return load_config_text(textwrap.dedent(text), Path("/etc/linkserver/linkserver.yaml"))


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        read(text)
    return str(caught.value)


def test_an_amqp_bridge_is_read_with_its_selection_and_inbound_queue() -> None:
    config = read(
        """
        bridges:
          - name: rabbit
            type: amqp
            url: amqp://guest:guest@127.0.0.1:5672/
            exchange: events
            routing: cloudstack
            source: node1
            select:
              - {mask: "devices.*", event: overheated, min_level: WARNING, filter: "data.temperature > 90"}
            inbound:
              queue: posted
              principal: ingest
              dead_letter_exchange: posted.dead
        """
    )
    (bridge,) = config.sections["bridges"]
    assert (bridge.name, bridge.type, bridge.routing) == ("rabbit", "amqp", CLOUDSTACK)
    (select,) = bridge.select
    assert (select.mask, select.event, select.min_level) == ("devices.*", "overheated", Level.WARNING)
    assert bridge.principal == "ingest"
    assert bridge.plugin_options(node_id=3) == {
        "routing": CLOUDSTACK,
        "source": "node1",
        "url": "amqp://guest:guest@127.0.0.1:5672/",
        "exchange": "events",
        "queue": "posted",
        "bindings": (),
        "dead_letter_exchange": "posted.dead",
        "prefetch": 100,
    }


def test_no_bridges_section_means_no_bridges() -> None:
    assert read("server: {node_id: 1}\n").sections["bridges"] == ()


def test_every_mistake_is_reported_at_its_line() -> None:
    text = problems(
        """
        bridges:
          - name: rabbit
            type: amqq
          - name: two
            type: amqp
            url: http://example.com
            routing: "{path}.{colour}"
            select:
              - {mask: "devices..x", event: "bad-name"}
              - {filter: "level >>= 3"}
            inbound: {principal: ingest}
          - name: two
            type: memory
        """
    )
    assert (
        f"{AT}4:11: 'type' in bridge 'rabbit' must be amqp or memory or mqtt or 'package.module:Class'"
        in (text)
    )
    assert f"{AT}7:10: 'url' in bridge 'two' must be an AMQP URL" in text
    assert f"{AT}8:14: routing template '{{path}}.{{colour}}' names unknown 'colour'" in text
    assert f"{AT}10:16: invalid context mask 'devices..x'" in text
    assert f"{AT}10:37: invalid event name 'bad-name'" in text
    assert f"{AT}11:18: 'filter' in " in text  # then the filter's own message:
    assert "column 8: expected a value after '>'" in text
    assert f"{AT}12:14: 'inbound' in bridge 'two' has no 'queue'" in text


def test_a_key_of_another_type_of_bridge_is_named() -> None:
    text = problems(
        """
        bridges:
          - {name: two, type: amqp, broker: nope}
          - {name: three, type: my.plugin:Bridge, url: "amqp://x"}
          - {name: four, type: memory}
          - {name: four, type: memory}
        """
    )
    assert f"{AT}3:29: 'broker' does not apply to bridge 'two' of type 'amqp'" in text
    assert f"{AT}6:12: bridge 'four' is already defined at line 5, column 5" in text
    assert (
        "'url' does not apply to bridge 'three' of type 'my.plugin:Bridge'; "
        "a plugin's own settings go under 'options'"
    ) in text
