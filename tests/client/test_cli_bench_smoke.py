"""tools/bench/cli.py --quick runs end to end and prints its goal lines (no timing asserted)."""

from __future__ import annotations

import re

from bench_helpers import run_quick_benchmark


def test_cli_benchmark_quick_run_prints_goal_lines() -> None:
    done = run_quick_benchmark("cli.py", timeout=180)
    for name in ("fire", "history"):
        assert re.search(
            rf"^goal cli_{name}_vs_httpx: \d+\.\d\dx \(target <= 1\.30x\) (ok|short)$", done.stdout, re.M
        )
