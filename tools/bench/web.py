#!/usr/bin/env python3
"""The web console in Debian's Chromium: how late a fired event is on screen, and whether the
page keeps answering under a flood.

One server in a subprocess (tools/bench/net.py's, the shipped contexts), one Chromium
(linkserver.web.browser) with two pages of the server's origin:

- the console, signed in, its live log filtered to the benchmark device;
- the baseline: a plain WebSocket client in a page of the same browser, subscribed to the
  same device, that only parses each message and takes the time (like for like: same
  browser, same JSON parsing, same clock).

Events are fired from Python over the WebSocket API (``measurement``, the fire time in
``value``); both pages take ``performance.timeOrigin + performance.now()`` for each event.

- ``web_row_p99_vs_websocket``: p99 of fire -> the row drawn in the console's list (in the
  DOM, laid out, shown at the next paint) over p99 of fire -> received by the baseline,
  at 100 events/s. Target <= 2.00x. The time to the next animation frame after the row
  (when the compositor shows it) is printed alongside.
- ``web_click_under_load``: 1,000 events/s for 30 s; every 0.5 s a real click (Chromium's
  input pipeline) on a row; from the click event's timestamp to the frame after the page
  handled it. p99 < 100 ms.
- ``web_memory_bounded``: JS heap after a forced GC once the list is full (its capacity,
  20,000 rows) and at the end of the flood, end over full; <= 1.20x. DOM nodes are printed.

    python tools/bench/web.py [--quick] [--seconds S] [--flood-seconds S]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from net import start_server, stop_server  # noqa: E402

from linkserver.web.browser import launch, sign_in  # noqa: E402

DEVICE = "devices.webbench"
BASELINE = """
([token, mask]) => new Promise((resolve, reject) => {
  window.latencies = [];
  const parse = (text) => JSON.parse(text);
  const ws = new WebSocket(`ws://${location.host}/api/v1/ws`, ["linkserver.v1", `bearer.${token}`]);
  ws.onerror = () => reject(new Error("the baseline WebSocket failed"));
  ws.onopen = () => ws.send(JSON.stringify({type: "subscribe", ref: 1, mask, batch: true}));
  ws.onmessage = (message) => {
    const now = performance.timeOrigin + performance.now();
    const m = parse(message.data);
    if (m.type === "subscribed") resolve(true);
    const events = m.type === "event" ? [m.event] : m.type === "events" ? m.events : [];
    for (const e of events) window.latencies.push(now - e.data[0].value * 1000);
  };
})
"""
CONSOLE_HOOK = """
() => {
  window.latencies = [];
  window.frames = [];
  window.linkserverConsole.rendered = (events, now) => {
    const sent = events.map((e) => e.data[0].value * 1000);
    for (const s of sent) window.latencies.push(now - s);
    requestAnimationFrame(() => {
      const frame = performance.timeOrigin + performance.now();
      for (const s of sent) window.frames.push(frame - s);
    });
  };
  window.clicks = [];
  document.addEventListener("click", (e) => {
    const at = e.timeStamp;
    requestAnimationFrame(() => setTimeout(() => window.clicks.push(performance.now() - at), 0));
  }, true);
}
"""


def p(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fire_paced(
    client: Any, rate: int, seconds: float, step: int, stop: threading.Event | None = None
) -> float:
    """Fire ``rate`` events/s for ``seconds`` in batches of ``step``, each stamped with its
    send time; returns the rate achieved."""
    total = int(rate * seconds)

    def batches() -> Any:
        started, sent = time.perf_counter(), 0
        while sent < total:
            delay = started + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            n = min(step, total - sent)
            yield [(DEVICE, "measurement", [{"quantity": "t", "value": now}]) for _ in range(n)]
            sent += n

    started = time.perf_counter()
    with client.session() as session:
        for _ in session.fire_batches(batches(), window=64):
            pass
    return total / (time.perf_counter() - started)


def heap(cdp: Any) -> tuple[float, int]:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["JSHeapUsedSize"] / 1e6, int(metrics["Nodes"])


def verdict(ok: bool) -> str:
    return "ok" if ok else "short"


def open_console(browser: Any, url: str, credentials: dict[str, Any], capacity: int) -> Any:
    page = browser.new_context(viewport={"width": 1300, "height": 800}).new_page()
    sign_in(page, url, credentials["user"], credentials["password"])
    page.goto(f"{url}/#/live?mask={DEVICE}")
    page.wait_for_selector("#live-status:text-matches('^\\\\d+ shown')")
    page.evaluate(CONSOLE_HOOK)
    page.evaluate(f"window.linkserverConsole.app.liveView.list.capacity = {capacity}")
    return page


def latency(client: Any, browser: Any, console: Any, url: str, seconds: float) -> None:
    """The first goal: fire -> row in the console against fire -> received by the baseline."""
    baseline = browser.new_context().new_page()
    baseline.goto(f"{url}/web/icon.svg")  # a document of the server's origin
    baseline.evaluate(BASELINE, [client.token(), DEVICE])
    time.sleep(0.5)
    achieved = fire_paced(client, 100, seconds, 1)
    time.sleep(1.0)
    shown, framed = console.evaluate("window.latencies"), console.evaluate("window.frames")
    received = baseline.evaluate("window.latencies")
    baseline.context.close()
    expected = int(100 * seconds)
    print(
        f"100 events/s for {seconds:.0f} s ({achieved:.0f}/s achieved, {expected} events):\n"
        f"  baseline WebSocket page: {len(received)} received, p50 {p(received, 0.5):.1f} ms, "
        f"p99 {p(received, 0.99):.1f} ms\n"
        f"  console: {len(shown)} rows drawn, p50 {p(shown, 0.5):.1f} ms, p99 {p(shown, 0.99):.1f} ms "
        f"(to the next animation frame: p99 {p(framed, 0.99):.1f} ms)"
    )
    ratio = p(shown, 0.99) / max(p(received, 0.99), 0.1)
    ok = ratio <= 2.0 and len(shown) == expected == len(received)
    print(f"goal web_row_p99_vs_websocket: {ratio:.2f}x (target <= 2.00x) {verdict(ok)}")


def flood(client: Any, console: Any, seconds: float, full_at: float) -> None:
    """The other goals: clicks answered and memory bounded while 1,000 events/s arrive."""
    cdp = console.context.new_cdp_session(console)
    cdp.send("Performance.enable")
    console.evaluate("window.clicks = []; window.latencies = []")
    fired: list[float] = []
    firing = threading.Thread(target=lambda: fired.append(fire_paced(client, 1000, seconds, 10)))
    started = time.monotonic()
    firing.start()
    samples: dict[str, tuple[float, int]] = {}
    box = console.locator("#live-list .vlist").bounding_box()
    assert box is not None
    while firing.is_alive():
        time.sleep(0.5)
        console.mouse.click(box["x"] + 60, box["y"] + 14 + 28 * 3)  # the fourth row: opens it
        console.keyboard.press("Escape")
        if "full" not in samples and time.monotonic() - started >= full_at:
            samples["full"] = heap(cdp)
    firing.join()
    time.sleep(1.0)
    samples["end"] = heap(cdp)
    clicks = console.evaluate("window.clicks")
    app = "window.linkserverConsole.app.liveView"
    rows, gaps = console.evaluate(f"{app}.list.length"), console.evaluate(f"{app}.gaps")
    drawn = len(console.evaluate("window.latencies"))
    print(
        f"1,000 events/s for {seconds:.0f} s ({fired[0] if fired else 0:.0f}/s achieved): "
        f"{drawn} rows drawn, "
        f"{gaps} dropped by the server for the page, the list holds {rows}\n"
        f"  {len(clicks)} clicks: p50 {p(clicks, 0.5):.1f} ms, max {max(clicks, default=float('nan')):.1f} ms"
    )
    click99 = p(clicks, 0.99)
    ok = click99 < 100 and bool(clicks)
    print(f"goal web_click_under_load: {click99:.2f}ms (target <= 100.00ms) {verdict(ok)}")
    full, end = samples.get("full", samples["end"]), samples["end"]
    growth = end[0] / full[0]
    print(
        f"  JS heap after GC: {full[0]:.1f} MB once full, {end[0]:.1f} MB at the end; "
        f"DOM nodes {full[1]} -> {end[1]}"
    )
    print(f"goal web_memory_bounded: {growth:.2f}x (target <= 1.20x) {verdict(growth <= 1.2)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--seconds", type=float, help="seconds of the 100 events/s latency run")
    parser.add_argument("--flood-seconds", type=float, help="seconds of the 1,000 events/s flood")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 20.0)
    flood_seconds = args.flood_seconds or (3.0 if args.quick else 30.0)
    capacity = 1000 if args.quick else 20000  # the console's default list: 20,000 rows
    full_at = capacity / 1000 + (0.5 if args.quick else 2.0)  # seconds into the flood: the list is full

    from playwright.sync_api import sync_playwright

    from linkserver.client import Client

    with tempfile.TemporaryDirectory(prefix="linkserver-bench-web-") as directory:
        process, url, credentials = start_server(Path(directory))
        try:
            with Client(url, user=credentials["user"], password=credentials["password"]) as client:
                client.add_context(DEVICE, description="web benchmark device")
                with sync_playwright() as playwright:
                    browser = launch(playwright)
                    console = open_console(browser, url, credentials, capacity)
                    latency(client, browser, console, url, seconds)
                    flood(client, console, flood_seconds, full_at)
                    browser.close()
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
