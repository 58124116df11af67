"""Fixtures of the browser tests: one Chromium and one server for the whole session.

The browser is Debian's Chromium (``LINKSERVER_TEST_BROWSER``, set by .ci/run).
With the variable set, a browser that cannot start fails the tests; without it
and without /usr/bin/chromium they are skipped. Each test gets a fresh page
(its own storage: sessions never leak between tests) and contexts of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from linkserver.testing import RunningServer
from linkserver.web.browser import BROWSER_VARIABLE, browser_path, launch

USERS = {
    "operator": {"**": "observer", "devices.**": "operator", "alerts.**": "operator"},
    "plant": {"devices.**": "operator"},  # sees devices only: no alerts, users, root events
}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = browser_path()
    if path is None:
        pytest.skip(f"no Chromium (install Debian's chromium or set {BROWSER_VARIABLE})")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get(BROWSER_VARIABLE):
            raise
        pytest.skip("playwright is not installed (the test extra)")
    with sync_playwright() as playwright:
        chromium = launch(playwright, path)  # with the variable set, a failure here fails the tests
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with RunningServer(users=USERS) as live:
        yield live


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1300, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors  # no script error on any page
