import re

from bench_helpers import run_quick_benchmark


def test_loading_benchmark_quick_mode_prints_every_goal():
    result = run_quick_benchmark("loading.py", timeout=180)
    goals = re.findall(
        r"^goal (\S+): -?\d+\.\d\d(x| kB) \(target <= \d+\.\d\d(?:x| kB)\) (ok|short)$", result.stdout, re.M
    )
    assert [name for name, _, _ in goals] == ["check_vs_libyaml_compose", "memory_per_definition"]
