"""tools/bench/durable.py --quick runs and prints both goal lines (whether ok or short)."""

from __future__ import annotations

import re

from bench_helpers import run_quick_benchmark


def test_durable_benchmark_quick_mode_prints_both_goals() -> None:
    result = run_quick_benchmark("durable.py", timeout=120)
    goals = re.findall(r"^goal (\S+): \d+\.\d\dx \(target >= 0\.50x\) (?:ok|short)$", result.stdout, re.M)
    assert goals == ["serial_durable_fire", "serial_durable_fire_fsync"], result.stdout
