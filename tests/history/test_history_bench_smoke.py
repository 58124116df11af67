"""tools/bench/history.py --quick runs and prints every goal line (whether ok or short)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_helpers import run_quick_benchmark

GOALS = ("sqlite_durable_fire", "postgres_durable_fire")


@pytest.mark.slow
def test_quick_benchmark_prints_every_goal(tmp_path: Path) -> None:
    result = run_quick_benchmark("history.py", "--workdir", str(tmp_path), timeout=300)
    lines = result.stdout.splitlines()
    pattern = re.compile(r"goal (\w+): (\d+\.\d\dx \(target (>=|<=) \d+\.\d\dx\) (ok|short)|skipped \(.+\))$")
    found = {match.group(1) for line in lines if (match := pattern.fullmatch(line))}
    assert found == set(GOALS), result.stdout
