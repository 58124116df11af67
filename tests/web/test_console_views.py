"""The web console's views in a real browser (issue 12's list): the event detail opened from the
keyboard with its data table, definition help, acknowledgements and related events; devices in the
tree with the state their state machine holds; the count of open alerts; pause and resume; the
alerts-to-do filter; light and dark."""

from __future__ import annotations

from typing import Any

from linkserver.testing import RunningServer
from linkserver.web.browser import sign_in


def active(page: Any) -> str:
    """What has the keyboard focus: its id, or its class names."""
    return str(page.evaluate("document.activeElement.id || document.activeElement.className"))


def test_the_detail_opens_from_the_keyboard_with_data_help_acknowledgements_and_related_events(
    server: RunningServer, page: Any
) -> None:
    device = server.new_device("detail")
    fire = server.server.fire
    older = fire(device, "error", {"code": "E7", "message": "belt slipping"}, durable=True)
    newer = fire(device, "error", {"code": "E9", "message": "belt torn"}, durable=True)
    with server.client() as client:
        client.acknowledge(newer.id, "belt replaced")
    sign_in(page, server.url, "operator", server.password("operator"))
    page.goto(f"{server.url}/#/history?mask={device}")
    page.wait_for_selector("#history-status:text-is('2 of 2 events')")
    page.focus("#history-list .vlist")
    page.keyboard.press("Home")  # the newest, at the top
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail:not([hidden]) #detail-body .related")
    assert active(page) == "detail-title"  # the keyboard is in the detail now
    assert page.inner_text("#detail-title") == f"error in {device}"
    body = page.inner_text("#detail-body")
    table = page.inner_text("#detail-body table.data")
    assert "code" in table and "E9" in table and "belt torn" in table
    assert "'code' is the device's own error code" in body  # the definition's help
    assert "Acknowledgements (1)" in body and "admin" in body and "belt replaced" in body
    related = page.inner_text("#detail-body .related")
    assert "belt slipping" in related and "belt torn" not in related  # the same context, not itself
    page.click("#detail-body .related button")  # one related event opens in its place
    page.wait_for_selector(f"#detail-body dd:text-is('{older.id}')")
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden")
    assert "vlist" in active(page)  # back in the list it was opened from
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#detail:not([hidden]) #detail-body dd:text-is('{older.id}')")


def test_the_tree_shows_each_device_with_the_state_its_machine_holds(
    server: RunningServer, page: Any
) -> None:
    running, idle = server.new_device("running"), server.new_device("idle")
    server.server.resources.transition(running, action="connect", by="test")
    server.server.fire(running, "connected", {"address": "10.0.0.7:502"})
    sign_in(page, server.url, "operator", server.password("operator"))
    page.goto(f"{server.url}/#/tree")
    page.wait_for_selector(f"#tree [data-path='{running}']")
    page.click("#tree [data-path='devices'] > .label")
    page.wait_for_selector(f"#devices tr[data-device='{running}']")
    cells = page.inner_text(f"#devices tr[data-device='{running}']").split("\t")
    assert cells[:2] == [running, "online"] and "disconnect" in cells[2] and cells[3] == "connected"
    assert page.inner_text(f"#devices tr[data-device='{idle}']").split("\t")[:2] == [idle, "offline"]
    page.click(f"#tree [data-path='{idle}'] > .label")  # one device alone
    page.wait_for_selector(f"#devices tr[data-device='{idle}']")
    assert page.locator("#devices tbody tr").count() == 1
    items = page.eval_on_selector_all("#tree [role=treeitem]", "nodes => nodes.map(n => n.dataset.path)")
    above = items[items.index(idle) - 1]
    page.keyboard.press("ArrowUp")  # the tree from the keyboard: the context above is chosen
    page.wait_for_selector(f"#tree [aria-selected='true'][data-path='{above}']")
    page.wait_for_selector(f"#context-detail h3:text-is('{above}')")


def test_the_header_counts_open_alerts_until_they_are_acknowledged(server: RunningServer, page: Any) -> None:
    sign_in(page, server.url, "operator", server.password("operator"))
    page.wait_for_selector("#open-alerts-count:text-matches('^[0-9]+$')")
    before = int(page.inner_text("#open-alerts-count"))
    alert = server.new_alert("counted")
    events = [
        server.server.fire(alert, "alert", {"message": f"pressure {n}"}, durable=True) for n in range(2)
    ]
    page.wait_for_selector(f"#open-alerts-count:text-is('{before + 2}')")
    with server.client() as client:
        for event in events:
            client.acknowledge(event.id, "vented")
    page.wait_for_selector(f"#open-alerts-count:text-is('{before}')")
    page.click("#open-alerts")  # the badge opens the alerts to do
    page.wait_for_url("**/#/history?ack=todo")


def test_pause_holds_new_events_and_resume_shows_them_in_order(server: RunningServer, page: Any) -> None:
    device = server.new_device("paused")
    sign_in(page, server.url, "operator", server.password("operator"))
    page.goto(f"{server.url}/#/live?mask={device}")
    page.wait_for_selector("#live-status:text-matches('^0 shown')")
    page.click("#live-pause")
    assert page.get_attribute("#live-pause", "aria-pressed") == "true"
    for n in range(3):
        server.server.fire(device, "error", {"code": f"E{n}", "message": f"held {n}"})
    page.wait_for_selector("#live-status:text-is('0 shown · paused: 3 waiting')")
    assert page.locator(".view:not([hidden]) .row:not([hidden])").count() == 0
    page.focus("#live-pause")  # a real button: the keyboard resumes too
    page.keyboard.press("Enter")
    page.wait_for_selector("#live-status:text-is('3 shown')")
    # the virtual list draws its rows on the next frame after the status line (waited for with
    # selectors: wait_for_function polls with an eval, which the page's CSP refuses, so it
    # failed whenever the rows were not there at its first look)
    for n in range(3):
        text = f"error E{n}: held {n}"
        page.wait_for_selector(f".view:not([hidden]) .row:not([hidden]) .text:text-is('{text}')")
    texts = page.eval_on_selector_all(
        ".view:not([hidden]) .row:not([hidden])",
        "rows => rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)"
        ".map(r => r.querySelector('.text').textContent)",
    )
    # newest first, each shown by the device error's message ("error CODE: MESSAGE")
    assert texts == ["error E2: held 2", "error E1: held 1", "error E0: held 0"]


# Holds the page's subscribe messages until the test lets them go: the server answering late,
# as on a busy machine, in an order the test chooses.
HOLD_SUBSCRIBE = """
  window.held = [];
  const send = WebSocket.prototype.send;
  // what is held and what was sent shows on <html> for selectors (the page's CSP forbids
  // the eval that wait_for_function's polling needs)
  const mark = (name, value) => {
    const html = document.documentElement;
    html.dataset[name] = [html.dataset[name] || "", value].join(" ");
  };
  WebSocket.prototype.send = function (text) {
    const message = JSON.parse(text);
    if (message.type === "subscribe") {
      window.held.push([message.mask, () => send.call(this, text)]);
      mark("held", message.mask);
    } else {
      if (message.type === "unsubscribe") mark("unsubscribed", "yes");
      send.call(this, text);
    }
  };
  window.release = (mask) => {
    for (const [m, go] of window.held.filter(([m]) => m === mask)) go();
    window.held = window.held.filter(([m]) => m !== mask);
  };
"""


def test_the_live_status_waits_for_the_subscription_of_the_filters_shown(
    server: RunningServer, page: Any
) -> None:
    """Filters changed while the previous view still subscribes: its late answer does not make
    the status line say "0 shown" before the new filters' subscription is live (the cause of a
    flaky pause test: events fired then were never shown)."""
    device = server.new_device("late")
    page.add_init_script(HOLD_SUBSCRIBE)
    sign_in(page, server.url, "operator", server.password("operator"))
    page.wait_for_selector("html[data-held~='**']", state="attached")  # the default view's
    page.goto(f"{server.url}/#/live?mask={device}")
    page.wait_for_selector(f"html[data-held~='{device}']", state="attached")
    page.evaluate("window.release('**')")
    # its answer came (the page unsubscribes what it no longer shows)
    page.wait_for_selector("html[data-unsubscribed]", state="attached")
    assert page.inner_text("#live-status") == "loading"
    page.click("#live-pause")
    page.evaluate(f"window.release('{device}')")
    page.wait_for_selector("#live-status:text-is('0 shown · paused: 0 waiting')")
    for n in range(2):
        server.server.fire(device, "error", {"code": f"E{n}", "message": f"late {n}"})
    page.wait_for_selector("#live-status:text-is('0 shown · paused: 2 waiting')")


def test_the_alerts_to_do_filter_shows_only_unacknowledged_alerts(server: RunningServer, page: Any) -> None:
    alert = server.new_alert("todo")
    fire = server.server.fire
    done = fire(alert, "alert", {"message": "done already"}, durable=True)
    fire(alert, "alert", {"message": "still to do"}, durable=True)
    with server.client() as client:
        client.acknowledge(done.id, "handled")
    sign_in(page, server.url, "operator", server.password("operator"))
    page.goto(f"{server.url}/#/history?mask={alert}")
    page.wait_for_selector("#history-status:text-is('2 of 2 events')")
    page.select_option("#f-ack", "todo")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**ack=todo**")
    page.wait_for_selector("#history-status:text-is('1 of 1 events')")
    # the virtual list draws its rows on the next frame after the status line
    page.wait_for_selector("#history-list .row .text:has-text('still to do')")
    assert "done already" not in page.inner_text("#history-list")


def test_the_theme_switches_and_is_kept(server: RunningServer, page: Any) -> None:
    sign_in(page, server.url, "operator", server.password("operator"))
    first = page.get_attribute("html", "data-theme")
    page.click("#theme")
    other = "light" if first == "dark" else "dark"
    assert page.get_attribute("html", "data-theme") == other
    assert page.get_attribute("#theme", "aria-pressed") == str(other == "dark").lower()
    page.reload()
    page.wait_for_selector("#console:not([hidden])")
    assert page.get_attribute("html", "data-theme") == other


def test_several_events_are_acknowledged_at_once_from_the_keyboard(server: RunningServer, page: Any) -> None:
    device = server.new_device("many")
    fired = [
        server.server.fire(device, "error", {"code": f"E{n}", "message": f"jam {n}"}, durable=True)
        for n in range(3)
    ]
    sign_in(page, server.url, "operator", server.password("operator"))
    page.goto(f"{server.url}/#/history?mask={device}")
    page.wait_for_selector("#history-status:text-is('3 of 3 events')")
    page.focus("#history-list .vlist")
    page.keyboard.press("Home")
    page.keyboard.press("Shift+ArrowDown")  # the newest two
    page.wait_for_selector("#history-ack:not([disabled])")
    page.click("#history-ack")
    page.wait_for_selector("#ack-dialog[open] #ack-what:text-is('2 events')")
    assert active(page) == "ack-text"
    page.keyboard.type("cleared the feeder")
    page.keyboard.press("Tab")  # Cancel, then Acknowledge
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ack-dialog", state="hidden")
    with server.client() as client:
        acks = {e.id: [a.text for a in client.event(e.id).acknowledgements] for e in fired}
    assert acks == {fired[0].id: [], fired[1].id: ["cleared the feeder"], fired[2].id: ["cleared the feeder"]}
    page.wait_for_selector(f"#history-list .row[data-id='{fired[2].id}'] .ack:text-is('ack operator')")
