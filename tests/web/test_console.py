"""The web console in a real browser against a real server (Debian's Chromium, Playwright).

The pages keep the console's Content-Security-Policy (no eval): tests wait with selectors,
not with wait_for_function.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from linkserver.testing import RunningServer
from linkserver.web.browser import sign_in


def rows(page: Any) -> list[dict[str, str]]:
    """The rows of the shown event list as drawn (the virtual list: those in view)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.view:not([hidden]) .row:not([hidden])')]
            .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
            .map(r => ({id: r.dataset.id, level: r.querySelector('.level').textContent,
                        context: r.querySelector('.context').textContent,
                        name: r.querySelector('.name').textContent,
                        text: r.querySelector('.text').textContent,
                        ack: r.querySelector('.ack').textContent}))"""
    )


def wait_for_row(page: Any, text: str) -> None:
    page.wait_for_selector(f".view:not([hidden]) .row:not([hidden]) .text:text-is('{text}')")


def test_signed_in_the_log_shows_events_fired_from_the_python_client_live(
    server: RunningServer, page: Any
) -> None:
    sockets: list[Any] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    page.goto(server.url + "/")
    page.fill("#signin-user", "operator")
    page.fill("#signin-password", "wrong")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('password')")
    sign_in(page, server.url, "operator", server.password("operator"))

    device = server.new_device()
    with server.client("operator") as client:
        client.fire(device, "error", {"code": "E42", "message": "pump stalled"})
    wait_for_row(page, "error E42: pump stalled")
    (row,) = [r for r in rows(page) if r["context"] == device]
    assert (row["level"], row["name"]) == ("ERROR", "error")
    token = page.evaluate("JSON.parse(sessionStorage.getItem('linkserver.session')).token")
    assert all(token not in s.url and "token=" not in s.url for s in sockets)  # never in a URL
    assert token not in page.url

    page.click("#signout")  # ends the session on the server and its WebSocket
    page.wait_for_selector("#signin:not([hidden])")
    page.wait_for_selector("#connection:text-is('closed')", state="attached")
    assert sockets and all(s.is_closed() for s in sockets)
    assert page.evaluate("sessionStorage.length") == 0
    with server.http(token=token) as http:
        assert http.get("/me").status_code == 401  # the session ended on the server


def test_filters_are_in_the_url_and_a_bad_filter_shows_its_error_where_it_is(
    server: RunningServer, page: Any
) -> None:
    sign_in(page, server.url, "operator", server.password("operator"))
    hot, cold = server.new_device("hot"), server.new_device("cold")
    page.fill("#f-mask", hot)
    page.select_option("#f-level", "WARNING")
    page.fill("#f-filter", "data.value > 50")
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(f"mask={hot}"))
    assert "level=WARNING" in page.url and "filter=data.value" in page.url
    page.wait_for_selector("#live-status:text-matches('^0 shown')")
    fire = server.server.fire
    fire(cold, "measurement", [{"quantity": "t", "value": 90.0}], level="ERROR")
    fire(hot, "measurement", [{"quantity": "t", "value": 10.0}], level="ERROR")
    fire(hot, "measurement", [{"quantity": "t", "value": 70.0}], level="INFO")
    fire(hot, "measurement", [{"quantity": "t", "value": 80.0}], level="WARNING")
    wait_for_row(page, "t 80.0")
    assert [(r["context"], r["text"]) for r in rows(page)] == [(hot, "t 80.0")]

    shared = page.context.browser.new_page()  # the URL is the view: bookmarked, shared
    shared.goto(page.url)
    shared.fill("#signin-user", "admin")
    shared.fill("#signin-password", server.admin_password)
    shared.click("#signin-form button[type=submit]")
    wait_for_row(shared, "t 80.0")
    assert shared.input_value("#f-filter") == "data.value > 50"
    shared.context.close()

    page.fill("#f-filter", "data.valeu > 50 and level >= WARNING")  # checked as it is typed
    message = page.wait_for_selector("#f-filter-error .message")
    assert (
        "data.valeu is not a field" in message.inner_text()
        and "did you mean 'data.value'" in message.inner_text()
    )
    assert page.inner_text("#f-filter-error mark") == "v"  # column 6: where the bad name starts
    assert page.get_attribute("#f-filter", "aria-invalid") == "true"
    page.click("#filters button[type=submit]")  # refused: the view keeps its filters
    assert "filter=data.value+%3E+50" in page.url or "filter=data.value%20%3E%2050" in page.url
    page.fill("#f-filter", "level >= WARNING")
    page.wait_for_selector("#f-filter-error .message", state="detached")
    assert page.get_attribute("#f-filter", "aria-invalid") == "false"


def test_history_pages_with_cursors_and_exports_what_the_filters_match(
    server: RunningServer, page: Any
) -> None:
    device = server.new_device("paged")
    with server.client() as client:
        client.fire_batch(
            [
                {"context": device, "event": "error", "data": {"code": f"E{i}", "message": f"m{i}"}}
                for i in range(250)
            ],
            durable=True,
        )
    sign_in(page, server.url, "operator", server.password("operator"))
    page.goto(f"{server.url}/#/history?mask={device}")
    page.wait_for_selector("#history-status:text-is('200 of 250 events')")
    assert rows(page)[0]["text"] == "error E249: m249"
    page.click("#history-more")  # the next page, by the answer's cursor
    page.wait_for_selector("#history-status:text-is('250 of 250 events')")
    assert page.is_disabled("#history-more")
    page.focus("#history-list .vlist")
    page.keyboard.press("End")  # the oldest, at the bottom of the virtual list
    page.wait_for_selector(".view:not([hidden]) .row .text:text-is('error E0: m0')")
    assert page.evaluate("document.querySelectorAll('#history-list .row').length") < 100  # only rows in view

    with page.expect_download() as download:
        page.click("#export-jsonl")
    lines = Path(download.value.path()).read_text().splitlines()
    assert [json.loads(line)["data"][0]["message"] for line in lines[:2]] == ["m249", "m248"] and len(
        lines
    ) == 250
    with page.expect_download() as download:
        page.click("#export-csv")
    csv = Path(download.value.path()).read_text().splitlines()
    assert csv[0].startswith("id,created,level,context,name") and len(csv) == 251


def test_an_alert_pops_up_for_everyone_and_is_gone_for_all_once_acknowledged(
    server: RunningServer, page: Any
) -> None:
    other = page.context.browser.new_context().new_page()
    sign_in(page, server.url, "operator", server.password("operator"))
    sign_in(other, server.url, "admin", server.admin_password)
    alert = server.new_alert()
    event = server.server.fire(
        alert, "alert", {"message": "tank level high", "severity": "high"}, durable=True
    )
    popup = f".popup[data-id='{event.id}']"
    page.wait_for_selector(popup)
    other.wait_for_selector(popup)
    assert "tank level high" in page.inner_text(popup)

    page.click(f"{popup} button[type=submit]")  # no text: asked for one
    page.wait_for_selector(f"{popup} .error:has-text('Say what was done')")
    page.fill(f"{popup} input", "valve closed")
    page.click(f"{popup} button[type=submit]")
    page.wait_for_selector(popup, state="detached")
    other.wait_for_selector(popup, state="detached")  # everyone's pop-up goes
    with server.client() as client:
        (ack,) = client.event(event.id).acknowledgements
    assert (ack.user, ack.text) == ("operator", "valve closed")
    wait_for_row(page, "tank level high (high)")
    assert [r["ack"] for r in rows(page) if r["id"] == str(event.id)] == ["ack operator"]
    other.context.close()


def test_a_user_with_fewer_grants_sees_less(server: RunningServer, page: Any) -> None:
    sign_in(page, server.url, "plant", server.password("plant"))
    device, alert = server.new_device("mine"), server.new_alert("hidden")
    server.server.fire(alert, "alert", {"message": "not for plant"}, durable=True)
    server.server.fire(device, "error", {"code": "E1", "message": "for plant"})
    wait_for_row(page, "error E1: for plant")
    shown = rows(page)
    assert {r["context"].split(".")[0] for r in shown} == {"devices"}
    assert "not for plant" not in page.inner_text("body")
    page.goto(f"{server.url}/#/tree")
    page.wait_for_selector("#tree [role=treeitem]")
    tree = page.inner_text("#tree")
    assert "devices" in tree and "alerts" not in tree and "users" not in tree
    page.click(f"#tree [data-path='{device}'] > .label")
    page.wait_for_selector("#context-detail table.definitions")
    assert re.search(r"error\s+ERROR\s+yes\s+90d", page.inner_text("#context-detail"))
    assert page.inner_text("#open-alerts-count") == "0"


def test_the_detail_shows_the_message_labels_and_instructions(server: RunningServer, page: Any) -> None:
    sign_in(page, server.url, "operator", server.password("operator"))
    device = server.new_device("coded")
    server.server.fire(device, "disconnected", {"reason": "timeout"}, durable=True)
    wait_for_row(page, "disconnected: the device stopped answering")
    page.dblclick(".view:not([hidden]) .row .text:text-is('disconnected: the device stopped answering')")
    page.wait_for_selector("#detail-body td.labelled")
    assert page.inner_text("#detail-body td.labelled") == "the device stopped answering (timeout)"
    assert page.inner_text("#detail-body p.message") == "disconnected: the device stopped answering"
    server.server.fire(device, "error", {"code": "E9", "message": "fuse"}, durable=True)
    wait_for_row(page, "error E9: fuse")
    page.dblclick(".view:not([hidden]) .row .text:text-is('error E9: fuse')")
    page.wait_for_selector("#detail-body p.instructions")
    assert page.inner_text("#detail-body p.instructions").startswith(
        "Look the code up in the device's manual."
    )
