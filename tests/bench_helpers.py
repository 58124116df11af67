"""Runs a benchmark of tools/bench/ in its --quick mode, for the smoke tests (no timing asserted).

``tests/`` is on ``sys.path`` through its conftest.py, so every test folder can
import this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def run_quick_benchmark(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``tools/bench/SCRIPT --quick ARGS`` from the checkout; fails the test on a non-zero exit.

    Benchmarks that also measure PostgreSQL get the test database of
    ``LINKSERVER_TEST_POSTGRES_URL``; without one they are pointed at an
    address that refuses, so they report those goals as skipped.
    """
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if "LINKSERVER_TEST_POSTGRES_URL" in environment:
        environment.setdefault("LINKSERVER_BENCH_POSTGRES_URL", environment["LINKSERVER_TEST_POSTGRES_URL"])
    else:
        environment["LINKSERVER_BENCH_POSTGRES_URL"] = UNREACHABLE_POSTGRES
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=environment,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result
