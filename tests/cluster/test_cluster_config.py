"""The cluster: section: absent means one node alone; each mistake at its file:line:column."""

from __future__ import annotations

import socket
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from linkserver.core.errors import ConfigError
from linkserver.loading import load_config_text

AT = "/etc/linkserver/linkserver.yaml:"


def read(text: str):  # noqa: ANN201
    return load_config_text(textwrap.dedent(text), Path("/etc/linkserver/linkserver.yaml"))


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        read(text)
    return str(caught.value)


def test_without_the_section_the_node_is_alone() -> None:
    assert read("server: {node_id: 4}\n").sections["cluster"] is None


def test_the_section_is_read_with_its_defaults() -> None:
    cluster = read(
        """
        cluster:
          url: amqp://guest:guest@127.0.0.1:5672/
          node_name: web1
          lease: 10s
        """
    ).sections["cluster"]
    assert cluster.url == "amqp://guest:guest@127.0.0.1:5672/"
    assert cluster.node_name == "web1" and cluster.exchange == "linkserver.cluster"
    assert cluster.lease == timedelta(seconds=10) and cluster.queue_expires == timedelta(minutes=10)
    assert read("cluster: {url: 'amqp://h/'}\n").sections["cluster"].node_name == socket.gethostname()


def test_each_mistake_is_reported_where_it_is() -> None:
    said = problems(
        """
        cluster:
          url: http://rabbit/
          node_name: "web 1"
          lease: soon
          exchnage: x
        """
    )
    assert f"{AT}3:8" in said and "must be an AMQP URL" in said
    assert f"{AT}4:14" in said and "without spaces" in said
    assert f"{AT}5:10" in said
    assert f"{AT}6:3" in said and "exchange" in said  # did you mean


def test_the_url_is_required() -> None:
    said = problems("cluster: {node_name: web1}\n")
    assert "'cluster' has no 'url'" in said and f"{AT}1:" in said
