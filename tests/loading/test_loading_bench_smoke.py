import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_benchmark_quick_mode_prints_every_goal():
    result = subprocess.run(
        [
            sys.executable,
            str(
                ROOT / "tools" / "bench" / "loading.py",
            ),
            "--quick",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    goals = re.findall(
        r"^goal (\S+): -?\d+\.\d\d(x| kB) \(target <= \d+\.\d\d(?:x| kB)\) (ok|short)$", result.stdout, re.M
    )
    assert [name for name, _, _ in goals] == ["check_vs_libyaml_compose", "memory_per_definition"]
