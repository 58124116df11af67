"""Helpers of the browser tests (tests/web is on sys.path through its conftest)."""

from __future__ import annotations

import os

import pytest

from linkserver.web.browser import BROWSER_VARIABLE, browser_path


def require_browser() -> str:
    """The Chromium to use; skips when there is none and LINKSERVER_TEST_BROWSER is not set."""
    path = browser_path()
    if path is None:
        pytest.skip(f"no Chromium (install Debian's chromium or set {BROWSER_VARIABLE})")
    try:
        import playwright  # noqa: F401
    except ImportError:
        if os.environ.get(BROWSER_VARIABLE):
            raise
        pytest.skip("playwright is not installed (the test extra)")
    return path
