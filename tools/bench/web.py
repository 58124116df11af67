#!/usr/bin/env python3
"""The web console in Debian's Chromium: how late a fired event is on screen, and whether the
page keeps answering under a flood.

One server in a subprocess (tools/bench/net.py's, the shipped contexts), one Chromium
(linkserver.web.browser) with two pages of the server's origin:

- the console, signed in, its live log filtered to the benchmark device (the whole
  console runs: its chart's subscription to everything, the pop-ups, the status line);
- the baseline: a plain page (no console code, no framework) with one WebSocket
  subscribed to the same device. For each event it does what any page must do to show
  it: parse the message (plain ``JSON.parse``; the console keeps 64-bit ids exact, which
  costs more), build a row of the same six cells (level, time, context, event, the data,
  acknowledgement) and put it on top of a list of 40 such rows, styled like the console's
  (a grid row of 28 px), dropping the oldest. Same browser, same clock.

Events are fired from Python over the WebSocket API (``measurement``, the fire time in
``value``); both pages take ``performance.timeOrigin + performance.now()`` for each event,
at the same two points:

- the row is in the DOM: the console right after its virtual list wrote the row (at the
  end of the task that did it: an animation frame callback when events come faster than
  frames, else the message's own task), the baseline right after it inserted its row.
  Nothing is laid out or painted yet on either side; both then need the same frame.
- the row was painted: a task posted from the next animation frame callback runs after
  that frame's style, layout, paint and commit on the page's main thread (the raster and
  the display that follow are the browser's, the same for both pages).

- ``web_row_p99_vs_websocket``: p99 of fire -> row in the console's DOM over p99 of fire ->
  row in the baseline's DOM, at 100 events/s. Target <= 2.00x. The painted p99s of both
  (and their ratio) are printed alongside: they include the wait for the next frame (up
  to 16.7 ms at 60 Hz), the same for both, which is why they are not the goal. So is the
  time the baseline's messages arrive (before it parses them) and the console's row p99
  over it: the stricter reading of "fire-to-receive of a plain WebSocket client".
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
# The baseline's document (see latency()).
BASELINE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>baseline</title><style>
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; }
  #list { height: 700px; overflow-y: auto; border: 1px solid #d8dde3; }
  .row { height: 28px; display: grid; align-items: center; gap: 8px; padding: 0 10px;
    grid-template-columns: 72px 100px minmax(120px, 1.2fr) minmax(110px, 1fr) 3fr 120px;
    border-bottom: 1px solid #d8dde3; white-space: nowrap; }
  .row > * { overflow: hidden; text-overflow: ellipsis; }
</style></head><body><div id="list"></div></body></html>
"""
# Painted: a task posted from the next animation frame runs after that frame's rendering.
AFTER_PAINT = """
  const afterPaint = (callback) => requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => callback(performance.timeOrigin + performance.now());
    channel.port2.postMessage(null);
  });
"""
BASELINE = (
    """
([token, mask]) => new Promise((resolve, reject) => {"""
    + AFTER_PAINT
    + """
  window.latencies = [];
  window.painted = [];
  window.received = [];
  const list = document.getElementById("list");
  const cell = (text) => {
    const span = document.createElement("span");
    span.textContent = text;
    return span;
  };
  const two = (n) => String(n).padStart(2, "0");
  const row = (e) => {
    const d = new Date(e.created);
    const ms = String(d.getMilliseconds()).padStart(3, "0");
    const time = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms}`;
    const data = e.data.map((r) => Object.entries(r).map(([k, v]) => `${k}=${v}`).join(" ")).join("; ");
    const node = document.createElement("div");
    node.className = "row";
    node.append(cell(e.level), cell(time), cell(e.context), cell(e.name), cell(e.message || data), cell(""));
    return node;
  };
  const ws = new WebSocket(`ws://${location.host}/api/v1/ws`, ["linkserver.v1", `bearer.${token}`]);
  ws.onerror = () => reject(new Error("the baseline WebSocket failed"));
  ws.onopen = () => ws.send(JSON.stringify({type: "subscribe", ref: 1, mask, batch: true}));
  ws.onmessage = (message) => {
    const arrived = performance.timeOrigin + performance.now();
    const m = JSON.parse(message.data);
    if (m.type === "subscribed") resolve(true);
    const events = m.type === "event" ? [m.event] : m.type === "events" ? m.events : [];
    if (!events.length) return;
    for (const e of events) list.prepend(row(e));
    while (list.childElementCount > 40) list.lastElementChild.remove();
    const now = performance.timeOrigin + performance.now();
    const sent = events.map((e) => e.data[0].value * 1000);
    for (const s of sent) window.latencies.push(now - s);
    for (const s of sent) window.received.push(arrived - s);
    afterPaint((painted) => { for (const s of sent) window.painted.push(painted - s); });
  };
})
"""
)
CONSOLE_HOOK = (
    """
() => {"""
    + AFTER_PAINT
    + """
  window.latencies = [];
  window.painted = [];
  window.linkserverConsole.rendered = (events, now) => {
    const sent = events.map((e) => e.data[0].value * 1000);
    for (const s of sent) window.latencies.push(now - s);
    afterPaint((painted) => { for (const s of sent) window.painted.push(painted - s); });
  };
  window.clicks = [];
  document.addEventListener("click", (e) => {
    const at = e.timeStamp;
    requestAnimationFrame(() => setTimeout(() => window.clicks.push(performance.now() - at), 0));
  }, true);
}
"""
)


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
    """The first goal: fire -> row in the console's DOM against fire -> row in the baseline's."""
    context = browser.new_context(viewport={"width": 1300, "height": 800})
    baseline = context.new_page()
    # A document of the server's origin without the console's CSP (the server's JSON answer
    # to an unknown path), rewritten into the baseline page. (A page Playwright serves itself
    # may not open a WebSocket to the loopback: Chromium's local network access checks.)
    baseline.goto(f"{url}/bench-baseline")
    baseline.evaluate("(html) => { document.open(); document.write(html); document.close(); }", BASELINE_PAGE)
    baseline.evaluate(BASELINE, [client.token(), DEVICE])
    time.sleep(0.5)
    achieved = fire_paced(client, 100, seconds, 1)
    expected = int(100 * seconds)
    counts = "[window.latencies.length, window.painted.length]"  # per page
    deadline = time.monotonic() + 1.0  # the last rows drawn and painted on both pages, or 1 s
    while (
        min(console.evaluate(counts) + baseline.evaluate(counts)) < expected and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    shown, painted = console.evaluate("window.latencies"), console.evaluate("window.painted")
    received, base_painted = baseline.evaluate("window.latencies"), baseline.evaluate("window.painted")
    arrived = baseline.evaluate("window.received")
    context.close()

    def line(samples: list[float]) -> str:
        return f"p50 {p(samples, 0.5):.1f} ms, p99 {p(samples, 0.99):.1f} ms"

    print(
        f"100 events/s for {seconds:.0f} s ({achieved:.0f}/s achieved, {expected} events):\n"
        f"  baseline page: {len(received)} rows in the DOM: {line(received)}; painted: {line(base_painted)}\n"
        f"  console:       {len(shown)} rows in the DOM: {line(shown)}; painted: {line(painted)}\n"
        f"  painted p99, console over baseline: {p(painted, 0.99) / max(p(base_painted, 0.99), 0.1):.2f}x; "
        f"the baseline's messages as they arrive (before parsing): {line(arrived)}, "
        f"console's rows over that: {p(shown, 0.99) / max(p(arrived, 0.99), 0.1):.2f}x"
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
    seconds = args.seconds or (1.0 if args.quick else 20.0)
    flood_seconds = args.flood_seconds or (2.0 if args.quick else 30.0)
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
