"""tools/bench/net.py --quick runs end to end and prints its goal lines."""

from __future__ import annotations

import re

from bench_helpers import run_quick_benchmark


def test_network_benchmark_quick_run_prints_goal_lines() -> None:
    done = run_quick_benchmark("net.py", timeout=180)
    assert re.search(
        r"^goal ws_fire_vs_rabbitmq: (\d+\.\d\dx \(target >= 1\.00x\) (ok|short)|n/a)", done.stdout, re.M
    )
    assert re.search(
        r"^goal ws_single_fire_vs_rabbitmq: (\d+\.\d\dx \(target >= 1\.00x\) (ok|short)|n/a)",
        done.stdout,
        re.M,
    )
    assert re.search(
        r"^websocket latency, 10 subscribers at .* p50 [\d.]+ ms, p99 [\d.]+ ms", done.stdout, re.M
    )
    if "rabbitmq unavailable" not in done.stderr:
        assert re.search(
            r"^goal ws_latency_p99_ms: [\d.]+ ms vs rabbitmq [\d.]+ ms = \d+\.\d\dx", done.stdout, re.M
        )
