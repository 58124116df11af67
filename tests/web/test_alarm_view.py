"""The web console's Alarms view against a real server in Chromium: an alarm fired from Python shows
(and updates live on alarmChanged), and an operator acknowledges it in the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alarm_helpers import alarm_catalog

from linkserver.testing import RunningServer
from linkserver.web.browser import sign_in

USERS = {"operator": {"**": "observer", "net.**": "operator"}}


@pytest.fixture(scope="module")
def alarm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("web_alarms")
    with RunningServer(base / "data", catalog=alarm_catalog(base / "contexts"), users=USERS) as live:
        live.server.engine.add_context("net.sw1")
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
