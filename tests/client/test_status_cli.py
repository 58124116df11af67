"""``linkserver status``: /metrics at a glance, and the metrics text parser it uses."""

from __future__ import annotations

import json

import pytest
from client_helpers import LiveServer
from prometheus_client.parser import text_string_to_metric_families

from linkserver.client import Client
from linkserver.client.cli import main
from linkserver.client.status import parse, quantile, summary, total


def test_status_shows_fires_history_and_sessions(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(live.url) as client:
        path = client.add_context("devices.plc9")
        for value in (1.0, 2.0, 3.0):
            client.fire(path, "measurement", [{"quantity": "t", "value": value}], durable=True)
    capsys.readouterr()
    assert main(["status", "--url", live.url]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("LinkServer ") and live.url in lines[0]
    fired = next(line for line in lines if line.startswith("fired"))
    assert "NOTICE" in fired
    assert "measurement 3" in next(line for line in lines if "by event" in line)
    assert any(line.startswith("history") and "in memory" in line for line in lines)
    assert any(line.startswith("sessions") for line in lines)
    assert main(["status", "--json", "--url", live.url]) == 0
    document = json.loads(capsys.readouterr().out)
    measured = [
        s["value"]
        for s in document["linkserver_events_fired_total"]
        if s["labels"] == {"event": "measurement", "level": "NOTICE"}
    ]
    assert measured == [3.0]


def test_status_without_credentials_exits_4(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--url", live.url, "--token", "not-a-token"]) == 4
    assert "authentication failed" in capsys.readouterr().err


def test_parse_reads_what_prometheus_client_reads() -> None:
    text = (
        "# HELP linkserver_events_fired_total Events fired.\n"
        "# TYPE linkserver_events_fired_total counter\n"
        'linkserver_events_fired_total{event="a\\"b",level="INFO"} 3.0\n'
        'linkserver_events_fired_total{event="x\\\\y\\nz",level="ERROR"} 1e3\n'
        "linkserver_contexts 12\n"
        'h_bucket{le="0.001"} 1\nh_bucket{le="0.01"} 9\nh_bucket{le="+Inf"} 10\nh_count 10\n'
    )
    samples = parse(text)
    theirs = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ours = {(name, labels): value for name, values in samples.items() for labels, value in values.items()}
    assert ours == theirs
    assert total(samples, "linkserver_events_fired_total") == 1003
    assert total(samples, "linkserver_events_fired_total", level="INFO") == 3
    assert quantile(samples, "h", 0.5) == 0.01
    assert quantile(samples, "h", 0.99) == float("inf")
    with pytest.raises(ValueError, match="line 1"):
        parse("not a sample line at all\n")


def test_summary_with_rates_between_two_scrapes() -> None:
    before = parse('linkserver_events_fired_total{event="m",level="INFO"} 100\n')
    now = parse('linkserver_events_fired_total{event="m",level="INFO"} 300\n')
    lines = summary("http://x", now, before, elapsed=2.0)
    assert "300 events, 100.0/s (INFO 300)" in lines[1]
    assert "in memory" in next(line for line in lines if line.startswith("history"))
