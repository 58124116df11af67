import re

from bench_helpers import run_quick_benchmark


def test_alarms_benchmark_quick_mode_prints_every_goal():
    result = run_quick_benchmark("alarms.py", timeout=180)
    goals = re.findall(r"^goal (\S+): \d+\.\d\dx \(target >= \d+\.\d\dx\) (ok|short)$", result.stdout, re.M)
    assert [name for name, _ in goals] == ["count_rules", "alarm_reduction"]
