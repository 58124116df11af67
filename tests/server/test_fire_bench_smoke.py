import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_fire_benchmark_quick_mode_prints_every_goal():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench" / "fire.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    goals = re.findall(r"^goal (\S+): \d+\.\d\dx \(target >= \d+\.\d\dx\) (ok|short)$", result.stdout, re.M)
    assert [name for name, _ in goals] == [
        "persistent_fire_1_listener",
        "nonpersistent_fire_1_listener",
        "fire_10_listeners",
    ]
