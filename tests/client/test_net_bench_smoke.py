"""tools/bench/net.py --quick runs end to end and prints its goal lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from client_helpers import ROOT


def test_network_benchmark_quick_run_prints_goal_lines() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "net.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
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
