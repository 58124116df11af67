"""tools/bench/web.py --quick runs (in Debian's Chromium) and prints its goal lines."""

from __future__ import annotations

from bench_helpers import run_quick_benchmark
from web_helpers import require_browser


def test_web_benchmark_quick_run_reports_its_goals() -> None:
    require_browser()  # skips or fails as the other browser tests
    result = run_quick_benchmark("web.py")
    for goal in ("web_row_p99_vs_websocket", "web_click_under_load", "web_memory_bounded"):
        assert f"goal {goal}: " in result.stdout, result.stdout
