"""Debian's Chromium driven by Playwright, for the console's tests, benchmark and screenshots.

Playwright never downloads a browser here: it launches the system's Chromium
(``LINKSERVER_TEST_BROWSER``, default ``/usr/bin/chromium``) with the flags
that keep it from talking to anything but the page's server. Import this
only where Playwright is installed (the ``test`` extra); the server never does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BROWSER_VARIABLE = "LINKSERVER_TEST_BROWSER"
DEFAULT_BROWSER = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def browser_path() -> str | None:
    """The Chromium to use: ``$LINKSERVER_TEST_BROWSER``, else /usr/bin/chromium if it exists."""
    wanted = os.environ.get(BROWSER_VARIABLE)
    if wanted:
        return wanted
    return DEFAULT_BROWSER if Path(DEFAULT_BROWSER).exists() else None


def launch(playwright: Any, path: str | None = None, *extra: str) -> Any:
    """A headless Chromium (a Playwright ``Browser``) from ``path`` or :func:`browser_path`."""
    executable = path or browser_path()
    if executable is None:
        raise FileNotFoundError(
            f"no Chromium: install Debian's 'chromium' or set {BROWSER_VARIABLE} to a Chromium binary"
        )
    return playwright.chromium.launch(executable_path=executable, args=[*FLAGS, *extra])


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    """Open the console at ``url`` and sign in; returns once the console shows."""
    page.goto(url + "/")
    page.fill("#signin-user", user)
    page.fill("#signin-password", password)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#console:not([hidden])")
    page.wait_for_selector("#connection:text-is('live')")  # selectors: the page's CSP forbids eval
