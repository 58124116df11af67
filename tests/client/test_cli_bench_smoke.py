"""tools/bench/cli.py --quick runs end to end and prints its goal lines (no timing asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from client_helpers import ROOT


def test_cli_benchmark_quick_run_prints_goal_lines() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "cli.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("fire", "history"):
        assert re.search(
            rf"^goal cli_{name}_vs_httpx: \d+\.\d\dx \(target <= 1\.30x\) (ok|short)$", done.stdout, re.M
        )
