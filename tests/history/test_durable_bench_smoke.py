"""tools/bench/durable.py --quick runs and prints both goal lines (whether ok or short)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_durable_benchmark_quick_mode_prints_both_goals() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "durable.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    goals = re.findall(r"^goal (\S+): \d+\.\d\dx \(target >= 0\.50x\) (?:ok|short)$", result.stdout, re.M)
    assert goals == ["serial_durable_fire", "serial_durable_fire_fsync"], result.stdout
