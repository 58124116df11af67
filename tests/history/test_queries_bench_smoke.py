"""tools/bench/queries.py --quick runs and prints every goal line (whether ok or short)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOALS = (
    "history_count", "history_count_user", "history_count_data", "history_selective_newest100",
    "history_page_fixed_cost", "purge_while_firing", "purge_fire_p99", "postgres_count",
)  # fmt: skip


@pytest.mark.slow
def test_quick_query_benchmark_prints_every_goal(tmp_path: Path) -> None:
    env = dict(os.environ, LINKSERVER_BENCH_DATA=str(tmp_path))
    if "LINKSERVER_TEST_POSTGRES_URL" in env:
        env.setdefault("LINKSERVER_BENCH_POSTGRES_URL", env["LINKSERVER_TEST_POSTGRES_URL"])
    else:  # without a PostgreSQL to test against, the benchmark reports it as skipped
        env["LINKSERVER_BENCH_POSTGRES_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "queries.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pattern = re.compile(r"goal (\w+): (\d+\.\d\dx \(target (>=|<=) \d+\.\d\dx\) (ok|short)|skipped \(.+\))$")
    found = {match.group(1) for line in result.stdout.splitlines() if (match := pattern.fullmatch(line))}
    assert found == set(GOALS), result.stdout
    assert list(tmp_path.glob("lsbench-*")) == []  # the benchmark's copies are gone
