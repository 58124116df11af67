"""tools/bench/queries.py --quick runs and prints every goal line (whether ok or short)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_helpers import run_quick_benchmark

GOALS = (
    "history_count", "history_count_user", "history_count_data", "history_selective_newest100",
    "history_page_fixed_cost", "purge_while_firing", "purge_fire_p99", "postgres_count",
)  # fmt: skip


@pytest.mark.slow
def test_quick_query_benchmark_prints_every_goal(tmp_path: Path) -> None:
    result = run_quick_benchmark("queries.py", env={"LINKSERVER_BENCH_DATA": str(tmp_path)}, timeout=300)
    pattern = re.compile(r"goal (\w+): (\d+\.\d\dx \(target (>=|<=) \d+\.\d\dx\) (ok|short)|skipped \(.+\))$")
    found = {match.group(1) for line in result.stdout.splitlines() if (match := pattern.fullmatch(line))}
    assert found == set(GOALS), result.stdout
    assert list(tmp_path.glob("lsbench-*")) == []  # the benchmark's copies are gone
