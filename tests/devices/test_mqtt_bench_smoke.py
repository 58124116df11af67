"""tools/bench/mqtt.py --quick runs against the test broker and prints both goal lines."""

from __future__ import annotations

import re

from bench_helpers import run_quick_benchmark
from mqtt_helpers import broker_url


def test_mqtt_benchmark_quick_mode_prints_both_goals() -> None:
    result = run_quick_benchmark("mqtt.py", env={"LINKSERVER_BENCH_MQTT_URL": broker_url()}, timeout=120)
    goals = re.findall(
        r"^goal (\S+): \d+\.\d\dx \(target [<>]= \d\.\d\dx\) (?:ok|short)$", result.stdout, re.M
    )
    assert goals == ["mqtt_ingest_throughput", "mqtt_ingest_p99"], result.stdout
