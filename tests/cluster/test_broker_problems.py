"""The cluster's own RabbitMQ connections in trouble, seen from outside (``linkserver serve``
nodes, their log and /metrics): RabbitMQ unreachable when the node starts, wrong credentials.
The node serves all the same, says what is wrong, counts each failed attempt by kind in
``linkserver_cluster_connection_problems_total{problem}``, and joins once RabbitMQ answers."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
from cluster_helpers import Node, start, wait_linked

from linkserver.testing_proxy import TcpProxy


def problems(node: Node, kind: str) -> float:
    text = httpx.get(f"{node.url}/metrics", headers=node.headers, timeout=10).text
    found = re.search(
        rf'^linkserver_cluster_connection_problems_total{{problem="{kind}"}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_rabbitmq_unreachable_when_a_node_starts_is_said_counted_and_the_node_joins_later(
    cluster: Callable[..., Node], proxies: Callable[[str, int], TcpProxy], rabbitmq_url: str
) -> None:
    to_b = proxies(rabbitmq_url, 5672)
    to_b.set_available(False)
    a = cluster("a")
    b = cluster("b", amqp_url=to_b.url_for(rabbitmq_url))
    start(a)
    b.start()  # serves without its broker
    wait_until(lambda: "cannot reach RabbitMQ at guest@127.0.0.1" in b.log(), "b's log line")
    assert b.metric("cluster_connected") == 0
    assert problems(b, "unreachable") >= 2  # its publishing and its consuming connection
    fired_early = b.fire("plant.line1", "reading", {"seq": 1})
    to_b.set_available(True)
    wait_until(lambda: b.metric("cluster_connected") == 1, "b to join", timeout=60)
    assert "connected to RabbitMQ at guest@127.0.0.1" in b.log()
    on_a = a.subscribe("plant.line1", "reading")
    wait_linked(b, a)
    fired = b.fire("plant.line1", "reading", {"seq": 2})
    got = on_a.wait_for(lambda ids: fired in ids)
    assert fired in got
    assert fired_early in a.history_ids("plant.line1", "reading")  # stored while b was alone
    assert problems(a, "unreachable") == 0


def test_wrong_credentials_for_the_cluster_are_said_without_the_password_and_counted(
    cluster: Callable[..., Node], rabbitmq_url: str
) -> None:
    wrong = re.sub(r"//([^:/@]+):([^@]*)@", r"//\1:wrong-secret@", rabbitmq_url)
    assert wrong != rabbitmq_url, "the test RabbitMQ URL has no user:password"
    node = cluster("a", amqp_url=wrong).start()
    wait_until(lambda: "refused the credentials" in node.log(), "the log line")
    assert "wrong-secret" not in node.log()
    assert problems(node, "credentials") >= 2 and problems(node, "unreachable") == 0
    assert node.metric("cluster_connected") == 0
    node.fire("plant.line1", "reading", {"seq": 1})  # the node serves: fired and stored
