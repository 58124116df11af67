"""Fixtures of the browser tests: one Chromium per module, one server for the session.

The browser is Debian's Chromium (``LINKSERVER_TEST_BROWSER``, set by .ci/run).
With the variable set, a browser that cannot start fails the tests; without it
and without /usr/bin/chromium they are skipped. Each test gets a fresh page
(its own storage: sessions never leak between tests) and contexts of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web_helpers import require_browser

from linkserver.testing import RunningServer
from linkserver.web.browser import launch

USERS = {
    "operator": {"**": "observer", "devices.**": "operator", "alerts.**": "operator"},
    "plant": {"devices.**": "operator"},  # sees devices only: no alerts, users, root events
}


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and other modules' tests call asyncio.run() (tests run in random
# order, but pytest-randomly keeps each module's tests together).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = require_browser()
    from playwright.sync_api import sync_playwright

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
