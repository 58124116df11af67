"""tools/bench/history.py --quick runs and prints every goal line (whether ok or short)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOALS = ("sqlite_durable_fire", "postgres_durable_fire")


@pytest.mark.slow
def test_quick_benchmark_prints_every_goal(tmp_path: Path) -> None:
    env = dict(os.environ)
    if "LINKSERVER_TEST_POSTGRES_URL" in env:
        env.setdefault("LINKSERVER_BENCH_POSTGRES_URL", env["LINKSERVER_TEST_POSTGRES_URL"])
    else:  # without a PostgreSQL to test against, the benchmark reports it as skipped
        env["LINKSERVER_BENCH_POSTGRES_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "history.py"), "--quick", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    pattern = re.compile(r"goal (\w+): (\d+\.\d\dx \(target (>=|<=) \d+\.\d\dx\) (ok|short)|skipped \(.+\))$")
    found = {match.group(1) for line in lines if (match := pattern.fullmatch(line))}
    assert found == set(GOALS), result.stdout
