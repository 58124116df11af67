"""tools/bench/bus.py --quick runs end to end against the local RabbitMQ and prints its goal lines."""

from __future__ import annotations

import os
import re

from bench_helpers import run_quick_benchmark


def test_bus_benchmark_quick_run_prints_goal_lines() -> None:
    url = os.environ.get("LINKSERVER_TEST_RABBITMQ_URL")
    done = run_quick_benchmark("bus.py", *(["--amqp-url", url] if url else []), timeout=300)
    number = r"\d+\.\d\dx.* \(target >= 0\.80x\) (ok|short)"
    for name in ("bridge_outbound_vs_pika", "outbox_drain_vs_steady"):
        # With RabbitMQ configured for the tests the goals must be measured, not n/a.
        expected = number if url else rf"({number}|n/a)"
        assert re.search(rf"^goal {name}: {expected}$", done.stdout, re.M), done.stdout + done.stderr
    node = r"\d+\.\d\dx \(target <= 2\.00x\) (ok|short)"
    expected = node if url else rf"({node}|n/a)"
    assert re.search(rf"^goal node_to_node_p99: {expected}$", done.stdout, re.M), done.stdout + done.stderr
    if url:
        assert re.search(r"^outbox drain .* (\S+) of \1 fired arrived$", done.stdout, re.M), done.stdout
