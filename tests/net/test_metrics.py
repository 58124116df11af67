"""/metrics: the Prometheus text format, counters that move while firing, who may read it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from net_helpers import TLS, Live
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(live: Live, token: str | None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{live.url}/metrics", headers=headers, verify=TLS, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def fire(live: Live, token: str, path: str, data: Any, **extra: Any) -> httpx.Response:
    with live.client(token=token) as client:
        return client.post("/fire", json={"context": path, "event": "measurement", "data": data, **extra})


def test_counters_move_while_firing(make_live: Callable[..., Live]) -> None:
    live = make_live(database_url="sqlite")
    token = live.token("admin")
    path = live.new_device()
    before = scrape(live, token)
    stop = threading.Event()
    fired = [0]

    def keep_firing() -> None:
        with live.client(token=token) as client:
            while not stop.is_set():
                body = {"context": path, "event": "measurement", "durable": True}
                body["data"] = [{"quantity": "t", "value": 1.0}]
                assert client.post("/fire", json=body).status_code == 200
                fired[0] += 1

    firer = threading.Thread(target=keep_firing)
    firer.start()
    try:
        seen = []
        for _ in range(3):
            time.sleep(0.3)
            seen.append(scrape(live, token))
    finally:
        stop.set()
        firer.join(10)
    counts = [value(s, "linkserver_events_fired_total", event="measurement", level="NOTICE") for s in seen]
    assert counts[0] < counts[1] < counts[2], counts  # scraped while firing: moving
    committed = [value(s, "linkserver_history_events_committed_total") for s in seen]
    assert committed[0] < committed[2]
    after = scrape(live, token)
    moved = value(after, "linkserver_events_fired_total", event="measurement", level="NOTICE") - value(
        before, "linkserver_events_fired_total", event="measurement", level="NOTICE"
    )
    assert moved == fired[0]
    batches = value(after, "linkserver_history_batch_size_count") - value(
        before, "linkserver_history_batch_size_count"
    )
    assert batches >= 1
    assert value(after, "linkserver_history_batch_size_sum") >= fired[0]
    assert value(after, "linkserver_history_commit_seconds_count") == value(
        after, "linkserver_history_batch_size_count"
    )
    assert value(after, "linkserver_history_commit_seconds_bucket", le="+Inf") == value(
        after, "linkserver_history_commit_seconds_count"
    )
    assert value(after, "linkserver_history_queue_depth") == 0


def test_failures_sessions_and_subscriptions_are_counted(make_live: Callable[..., Live]) -> None:
    live = make_live()
    token = live.token("admin")
    path = live.new_device()
    before = scrape(live, token)
    bad = fire(live, token, path, [{"quantity": "t", "value": "not a number"}], level="WARNING")
    assert bad.status_code == 422
    with live.client() as client:
        assert client.post("/login", json={"user": "admin", "password": "wrong"}).status_code == 401
        assert client.get("/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    with live.ws("admin") as ws:
        ws.send('{"type": "subscribe", "ref": 1, "mask": "devices.**", "event": "measurement"}')
        assert "subscribed" in ws.recv(5)
        during = scrape(live, token)
    after = scrape(live, token)
    assert value(
        during, "linkserver_fire_validation_failures_total", event="measurement", level="WARNING"
    ) == (
        value(before, "linkserver_fire_validation_failures_total", event="measurement", level="WARNING") + 1
    )
    assert value(during, "linkserver_authentication_failures_total", kind="login") == (
        value(before, "linkserver_authentication_failures_total", kind="login") + 1
    )
    assert value(during, "linkserver_authentication_failures_total", kind="token") >= (
        value(before, "linkserver_authentication_failures_total", kind="token") + 1
    )
    assert value(during, "linkserver_sessions", kind="websocket") == 1
    assert value(during, "linkserver_subscriptions", delivery="sync") == (
        value(before, "linkserver_subscriptions", delivery="sync") + 1
    )
    assert value(during, "linkserver_sessions", kind="login") >= 1
    for _ in range(50):  # the server notices the closed socket a moment later
        if value(after, "linkserver_sessions", kind="websocket") == 0:
            break
        time.sleep(0.05)
        after = scrape(live, token)
    assert value(after, "linkserver_sessions", kind="websocket") == 0
    assert (
        value(
            after,
            "linkserver_info",
            version=__import__("linkserver").__version__,
            node_id="0",
            history="memory",
        )
        == 1
    )
    assert value(after, "process_resident_memory_bytes") > 0


def test_reading_metrics_needs_observer_on_root(live: Live) -> None:
    anonymous = httpx.get(f"{live.url}/metrics", verify=TLS)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    narrow = httpx.get(
        f"{live.url}/metrics", headers={"Authorization": f"Bearer {live.token('observer')}"}, verify=TLS
    )
    assert narrow.status_code == 403
    assert "observer on root" in narrow.json()["error"]["message"]
    assert scrape(live, live.token("operator"))  # '**': observer


def test_open_metrics_need_no_token(make_live: Callable[..., Live], tmp_path: Any) -> None:
    live = make_live()
    live.stop()
    text = live.config.source.read_text().replace("server:\n", "server:\n  metrics: open\n", 1)
    live.config.source.write_text(text)
    opened = Live(live.config.source)
    try:
        assert value(scrape(opened, None), "linkserver_contexts") > 0
    finally:
        opened.stop()


def test_a_bad_metrics_setting_is_a_config_error(tmp_path: Any) -> None:
    from linkserver.core.errors import ConfigError
    from linkserver.loading.config import load_config_text

    with pytest.raises(ConfigError, match="'metrics' in 'server' must be 'observer' or 'open'"):
        load_config_text("server:\n  metrics: public\n", tmp_path / "linkserver.yaml")
