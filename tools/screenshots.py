#!/usr/bin/env python3
"""The screenshots of docs/web.md: the console's main views against a test server with a few
devices, alerts and events, in Debian's Chromium (linkserver.web.browser).

    python tools/screenshots.py [--out docs/images]

Writes web-live.png, web-history.png, web-detail.png, web-popup.png, web-tree.png,
web-alarms.png, web-filter-error.png and web-dark.png (1100x650; reduced to 64 colours by
pngquant when it is installed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from linkserver.testing import RunningServer  # noqa: E402
from linkserver.web.browser import launch, sign_in  # noqa: E402


def populate(live: RunningServer) -> None:
    fire = live.server.fire
    pumps = [f"devices.pump{i}" for i in range(1, 4)]
    for path in pumps:
        live.server.engine.add_context(path, description=f"Cooling water pump {path[-1]}")
        fire(path, "connected", {"address": f"10.0.0.{path[-1]}:502", "firmware": "4.2"})
        fire(path, "stateChanged", {"old": "starting", "new": "online"})
    fire(pumps[1], "stateChanged", {"old": "online", "new": "degraded"}, level="WARNING")
    for minute in range(40):
        for path in pumps:
            fire(
                path,
                "measurement",
                [
                    {
                        "quantity": "temperature",
                        "value": 60 + (minute * 7 + int(path[-1]) * 13) % 35,
                        "unit": "degC",
                    }
                ],
            )
    fire(pumps[2], "error", {"code": "E17", "message": "Bearing temperature above limit"})
    fire(pumps[0], "error", {"code": "E4", "message": "Suction pressure low"}, level="WARNING")
    fire(pumps[0], "error", {"code": "E4", "message": "Suction pressure low"}, level="WARNING")
    fire(pumps[2], "disconnected", {"reason": "timeout"})
    fire(pumps[1], "disconnected", {"reason": "timeout"})
    fire(pumps[1], "connected", {"address": "10.0.0.2:502", "firmware": "4.2"})  # clears its alarm
    live.server.engine.add_context("alerts.overheating", description="Pump overheating")
    fire(
        "alerts.overheating",
        "alert",
        {"message": "Pump 3 is overheating", "cause": "devices.pump3/error", "severity": "high"},
        durable=True,
    )


def small(path: Path) -> None:
    """Fewer colours, a fraction of the bytes, when pngquant is there (the docs keep small PNGs)."""
    pngquant = shutil.which("pngquant")
    if pngquant:
        command = [pngquant, "--force", "--skip-if-larger", "--output", str(path), "64", str(path)]
        subprocess.run(command, check=False, timeout=60)  # 98: not smaller, kept as it is


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with RunningServer() as live, sync_playwright() as pw:
        populate(live)
        browser = launch(pw)
        page = browser.new_context(viewport={"width": 1100, "height": 650}, color_scheme="light").new_page()

        def shot(name: str) -> None:
            time.sleep(1.3)  # the chart draws once a second
            path = out / f"web-{name}.png"
            page.screenshot(path=str(path))
            small(path)
            print("wrote", path, f"({path.stat().st_size // 1024} KB)")

        sign_in(page, live.url, "operator", live.password("operator"))
        page.wait_for_selector(".popup")
        shot("live")
        page.fill(".popup input", "Valve opened, pump 3 cooling down")
        page.click(".popup button:text-is('Acknowledge')")  # the pop-up goes: the other views show
        page.wait_for_selector(".popup", state="detached")
        page.goto(f"{live.url}/#/history?mask=devices.**&level=WARNING")
        page.wait_for_selector("#history-status:text-matches('of')")
        shot("history")
        page.click("#history-list .row .text:has-text('Bearing temperature above limit')")
        page.wait_for_selector("#detail-body table.data")
        shot("detail")
        page.click("#detail-close")
        page.goto(f"{live.url}/#/live?mask=devices.**&filter=data.temprature+>+80")
        page.wait_for_selector("#f-filter-error .message")
        shot("filter-error")
        page.goto(f"{live.url}/#/tree")
        page.click("#tree [data-path='devices'] > .label")
        page.wait_for_selector("#devices table")
        shot("tree")
        page.goto(f"{live.url}/#/alarms")
        page.wait_for_selector("#alarms-body tr[data-id]")
        page.check("#alarms-body input[name=state][value=cleared]")  # pump 2's link alarm too
        page.wait_for_selector("#alarms-body tr[data-id] >> text=cleared")
        shot("alarms")
        page.goto(f"{live.url}/#/live")
        page.click("#theme")
        shot("dark")
        browser.close()


if __name__ == "__main__":
    main()
