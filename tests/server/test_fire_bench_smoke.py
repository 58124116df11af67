import re

from bench_helpers import run_quick_benchmark


def test_fire_benchmark_quick_mode_prints_every_goal():
    result = run_quick_benchmark("fire.py", timeout=120)
    goals = re.findall(r"^goal (\S+): \d+\.\d\dx \(target >= \d+\.\d\dx\) (ok|short)$", result.stdout, re.M)
    assert [name for name, _ in goals] == [
        "persistent_fire_1_listener",
        "nonpersistent_fire_1_listener",
        "fire_10_listeners",
        "state_transition",
    ]
