"""The web console's Alarms view against a real server in Chromium: an alarm fired from Python shows
(and updates live on alarmChanged), and an operator acknowledges it in the page; an event's detail
lists the events of the same context and of the same alarm, only those the user may see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alarm_helpers import alarm_catalog

from linkserver.testing import RunningServer
from linkserver.web.browser import sign_in

USERS = {"operator": {"**": "observer", "net.**": "operator"}, "sw1only": {"net.sw1": "observer"}}


@pytest.fixture(scope="module")
def alarm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("web_alarms")
    with RunningServer(base / "data", catalog=alarm_catalog(base / "contexts"), users=USERS) as live:
        live.server.engine.add_context("net.sw1")
        live.server.engine.add_context("net.sw2")
        yield live


def cells(page: Any, alarm_id: int) -> list[str]:
    return page.eval_on_selector(
        f"#alarms-body tr[data-id='{alarm_id}']", "row => [...row.cells].map(c => c.textContent)"
    )


def test_an_alarm_shows_updates_live_and_is_acknowledged(alarm_server: RunningServer, page: Any) -> None:
    server = alarm_server
    down = server.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True)
    sign_in(page, server.url, "operator", server.password("operator"))
    page.click("nav a[data-view=alarms]")
    row = f"#alarms-body tr[data-id='{down.id}']"
    page.wait_for_selector(row)
    state, level, context, name, message, count = cells(page, down.id)[1:7]
    assert (state, level, context, name, count) == ("open", "WARNING", "net.sw1", "linkDown", "1")
    assert message == "interface 3 of net.sw1 is down (WARNING)"  # the last event's, from GET /alarms

    server.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, level="ERROR", durable=True)
    page.wait_for_selector(f"{row}[data-level=ERROR]")  # alarmChanged: the row is read again
    assert cells(page, down.id)[5:7] == ["interface 3 of net.sw1 is down (ERROR)", "2"]
    other = server.server.fire("net.sw1", "linkDown", {"ifIndex": 4}, durable=True)
    page.wait_for_selector(f"#alarms-body tr[data-id='{other.id}']")  # a new alarm is added on top

    page.check(f"{row} input[type=checkbox]")
    page.click("#alarms-body button:has-text('Acknowledge selected')")
    page.wait_for_selector("#ack-dialog[open]")
    page.fill("#ack-text", "replacing the cable")
    page.click("#ack-submit")
    page.wait_for_selector(f"{row}[data-state=acknowledged]")
    assert cells(page, down.id)[9] == "operator: replacing the cable"
    alarm = server.server.alarms.get(down.id, None)
    assert [(a.user, a.text) for a in alarm.acknowledgements] == [("operator", "replacing the cable")]

    server.server.fire("net.sw1", "linkUp", {"ifIndex": 3}, durable=True)
    page.wait_for_selector(row, state="detached")  # cleared: not listed with open and acknowledged


def related(page: Any, kind: str) -> list[int]:
    return [
        int(i)
        for i in page.eval_on_selector_all(
            f"#detail-body ul[data-related={kind}] li", "items => items.map(i => i.dataset.id)"
        )
    ]


def open_newest(page: Any, url: str, mask: str) -> None:
    page.goto(f"{url}/#/history?mask={mask}&event=powerLost")
    page.wait_for_selector("#history-list .vlist [role=option]")
    page.focus("#history-list .vlist")
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail:not([hidden]) #detail-body ul[data-related=alarm]")


def test_the_detail_lists_the_same_alarms_events_as_the_api_lets_the_user_see_them(
    alarm_server: RunningServer, page: Any, browser: Any
) -> None:
    server = alarm_server
    fire = server.server.fire
    # One alarm per site, across switches: its events are in net.sw2 and net.sw1.
    first = fire("net.sw2", "powerLost", {"site": "west"}, durable=True)
    middle = fire("net.sw1", "powerLost", {"site": "west"}, durable=True)
    newest = fire("net.sw1", "powerLost", {"site": "west"}, durable=True)
    sign_in(page, server.url, "operator", server.password("operator"))
    open_newest(page, server.url, "net.sw1")
    assert page.inner_text("#detail-title") == "powerLost in net.sw1"
    assert related(page, "alarm") == [middle.id, first.id]  # newest first, not itself
    assert middle.id in related(page, "context") and first.id not in related(page, "context")
    assert "power:west" in page.inner_text("#detail-body .alarm-key")
    page.click(f"#detail-body ul[data-related=alarm] li[data-id='{first.id}'] button")
    page.wait_for_selector(f"#detail-body dd:text-is('{first.id}')")  # opens in its place
    assert page.inner_text("#detail-title") == "powerLost in net.sw2"

    context = browser.new_context(viewport={"width": 1300, "height": 800})
    context.set_default_timeout(10_000)
    try:
        other = context.new_page()
        sign_in(other, server.url, "sw1only", server.password("sw1only"))
        open_newest(other, server.url, "net.sw1")
        assert related(other, "alarm") == [middle.id]  # net.sw2's event is not the user's to see
        with server.client("sw1only") as api:
            page_of_api = api.alarm_events(first.id)
        assert [e.id for e in page_of_api.events] == [
            newest.id,
            middle.id,
        ]  # what the page showed, plus itself
    finally:
        context.close()
