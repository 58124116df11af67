"""The audit trail over real HTTP: every change through the API is exactly one action event in the
actor's users.NAME context, saying what, where and how it ended; only managers of that context see it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alarm_helpers import alarm_catalog

from linkserver.history.base import HistoryQuery
from linkserver.net.audit import AUDITED
from linkserver.net.tokens import create_token
from linkserver.testing import RunningServer
from linkserver.wire.routes import OPERATIONS

USERS = {
    "alice": {"**": "observer", "devices.**": "manager", "vms.**": "operator"},
    "bob": {"**": "observer", "devices.**": "operator"},
    "auditor": {"**": "observer", "users.**": "manager"},
    "plc": {"devices.plc1": "operator"},  # sees nothing of users
}
_names = itertools.count(1)

# Operations that change nothing, or whose own events already say who did what: not audited.
NOT_CHANGES = {
    "login", "logout", "fire", "fire_batch", "check_filter",  # a fired event is its own record
    "add_job", "start_job", "job_progress", "complete_job", "fail_job",  # job events carry the user
}  # fmt: skip


@pytest.fixture(scope="module")
def live() -> Iterator[RunningServer]:
    with RunningServer(users=USERS) as server:
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


def actions(live: RunningServer, actor: str) -> list[dict[str, Any]]:
    """The action records in users.ACTOR, oldest first (as the server stored them)."""
    live.server.history.flush()
    page = live.server.history.query(
        HistoryQuery(masks=(f"users.{actor}",), names=("action",), newest_first=False, limit=10_000)
    )
    return [{**e.record, "_level": e.level.name, "_author": e.author} for e in page.events]


class Trail:
    """The action events ``actor`` adds while a ``with`` block runs: exactly one is expected."""

    def __init__(self, live: RunningServer, actor: str) -> None:
        self.live, self.actor = live, actor

    def __enter__(self) -> Trail:
        self.before = len(actions(self.live, self.actor))
        return self

    def __exit__(self, *exc: object) -> None:
        added = actions(self.live, self.actor)[self.before :]
        assert len(added) == 1, added
        self.action = added[0]


def fire_alarm(live: RunningServer, device: str) -> int:
    live.server.engine.add_context(device)
    event = live.server.fire(device, "error", {"code": "E1", "message": "overheat"}, durable=True)
    return event.id


def test_every_operation_that_changes_something_is_audited() -> None:
    changing = {op.name for op in OPERATIONS if op.method != "GET"} - NOT_CHANGES
    assert changing == set(AUDITED), "add the operation to linkserver/net/audit.py AUDITED (or NOT_CHANGES)"


def test_an_acknowledgement_is_one_action_with_what_where_and_the_text(live: RunningServer) -> None:
    device = f"devices.{unique('ack')}"
    event_id = fire_alarm(live, device)
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.post(f"/events/{event_id}/acknowledge", json={"text": "fan replaced"}).status_code == 200
    action = trail.action
    assert {k: action[k] for k in ("what", "where", "target", "result", "detail", "actor", "token")} == {
        "what": "acknowledge",
        "where": device,
        "target": f"event {event_id}",
        "result": "success",
        "detail": "fan replaced",
        "actor": "alice",
        "token": False,
    }
    assert action["error"] is None and action["address"] == "127.0.0.1"
    assert action["_author"] == "alice" and action["_level"] == "NOTICE"


def test_a_delete_denied_and_then_allowed_is_two_actions(live: RunningServer) -> None:
    device = f"devices.{unique('del')}"
    event_id = fire_alarm(live, device)
    with Trail(live, "bob") as trail, live.http("bob") as bob:
        assert bob.delete(f"/events/{event_id}").status_code == 403
    assert trail.action["what"] == "delete" and trail.action["where"] == device
    assert trail.action["result"] == "denied" and trail.action["_level"] == "WARNING"
    assert trail.action["error"].startswith("PermissionDenied: bob may not delete event")
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.delete(f"/events/{event_id}").status_code == 200
    assert (trail.action["what"], trail.action["where"], trail.action["result"]) == (
        "delete",
        device,
        "success",
    )
    assert trail.action["detail"] == "error"  # the event's name


def test_a_refused_attempt_on_an_invisible_event_names_only_its_id(live: RunningServer) -> None:
    event_id = fire_alarm(live, f"devices.{unique('hidden')}")
    with Trail(live, "plc") as trail, live.http("plc") as plc:
        assert plc.delete(f"/events/{event_id}").status_code == 404
    assert trail.action["result"] == "refused" and trail.action["where"] is None
    assert trail.action["target"] == f"event {event_id}" and "hidden" not in str(trail.action)


def test_purge_denied_and_done(live: RunningServer) -> None:
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.post("/purge").status_code == 403
    assert (trail.action["what"], trail.action["where"], trail.action["result"]) == (
        "purge",
        "root",
        "denied",
    )
    with Trail(live, "admin") as trail, live.http("admin") as admin:
        assert admin.post("/purge").status_code == 200
    detail = trail.action["detail"]
    assert trail.action["result"] == "success" and re.fullmatch(
        r"\d+ cleared alarms and \d+ expired events removed", detail
    ), detail


def test_adding_and_removing_a_context(live: RunningServer) -> None:
    path = f"devices.{unique('ctx')}"
    with Trail(live, "admin") as trail, live.http("admin") as admin:
        assert admin.post("/contexts", json={"path": path, "template": "device"}).status_code == 201
    assert trail.action["what"] == "add_context" and trail.action["where"] == path
    assert trail.action["detail"] == "template device" and trail.action["result"] == "success"
    with Trail(live, "admin") as trail, live.http("admin") as admin:
        assert admin.post("/contexts", json={"path": path}).status_code == 409
    assert trail.action["result"] == "refused" and trail.action["error"].startswith("ContextExists")
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.delete(f"/contexts/{path}").status_code == 403
    assert (trail.action["what"], trail.action["result"]) == ("remove_context", "denied")
    with Trail(live, "admin") as trail, live.http("admin") as admin:
        assert admin.delete(f"/contexts/{path}").status_code == 200
    assert trail.action["where"] == path and trail.action["detail"] == "1 contexts removed"


def test_user_and_grant_changes(live: RunningServer) -> None:
    name = unique("carol")
    steps: list[tuple[str, str, Any]] = [
        (
            "add_user",
            "POST /users",
            {"name": name, "password": "carol-secret", "grants": {"vms.**": "observer"}},
        ),
        ("grant", f"POST /users/{name}/grants", {"grants": {"devices.**": "operator"}}),
        ("revoke", f"POST /users/{name}/revoke", {"masks": ["vms.**"]}),
        ("set_password", f"POST /users/{name}/password", {"password": "another-secret"}),
        ("remove_user", f"DELETE /users/{name}", None),
    ]
    details = {
        "add_user": "vms.**: observer",
        "grant": "devices.**: operator",
        "revoke": "vms.**",
        "set_password": None,
        "remove_user": None,
    }
    for what, route, body in steps:
        method, path = route.split(" ")
        with Trail(live, "admin") as trail, live.http("admin") as admin:
            answer = admin.request(method, path, json=body)
            assert answer.status_code in (200, 201), answer.text
        assert (trail.action["what"], trail.action["where"], trail.action["target"]) == (
            what,
            f"users.{name}",
            name,
        )
        assert trail.action["result"] == "success" and trail.action["detail"] == details[what]
        assert "secret" not in str(trail.action)
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.post("/users/bob/grants", json={"grants": {"**": "admin"}}).status_code == 403
    assert (trail.action["what"], trail.action["where"], trail.action["result"]) == (
        "grant",
        "users.bob",
        "denied",
    )


def test_state_transitions_allowed_and_refused(live: RunningServer) -> None:
    vm = f"vms.{unique('vm')}"
    live.server.engine.add_context(vm)
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.post(f"/resources/{vm}/transition", json={"action": "start"}).status_code == 200
    assert (trail.action["what"], trail.action["where"], trail.action["result"]) == (
        "transition",
        vm,
        "success",
    )
    assert trail.action["detail"] == "Stopped -> Starting (action start)"
    with Trail(live, "alice") as trail, live.http("alice") as alice:
        assert alice.post(f"/resources/{vm}/transition", json={"to": "Stopped"}).status_code == 409
    assert trail.action["result"] == "refused" and trail.action["detail"] == "to Stopped"
    assert trail.action["error"].startswith(f"InvalidTransition: {vm} is Starting")
    with Trail(live, "plc") as trail, live.http("plc") as plc:
        assert plc.post(f"/resources/{vm}/transition", json={"action": "stop"}).status_code == 404
    assert trail.action["result"] == "refused" and trail.action["where"] is None


def test_an_api_token_records_its_actions_in_its_own_context(live: RunningServer) -> None:
    name = unique("ci")
    token = create_token(live.server.history.api_tokens, name, {"devices.**": "admin"})
    path = f"devices.{unique('bytoken')}"
    with live.http(token=token) as ci:
        assert ci.post("/contexts", json={"path": path}).status_code == 201
    [action] = actions(live, name)
    assert (action["what"], action["where"], action["actor"], action["token"]) == (
        "add_context",
        path,
        name,
        True,
    )


def test_reads_and_undecodable_requests_are_not_actions(live: RunningServer) -> None:
    before = len(actions(live, "alice"))
    with live.http("alice") as alice:
        assert alice.get("/tree").status_code == 200
        assert alice.get("/history").status_code == 200
        assert alice.post("/events/1/acknowledge", json={"txt": "typo"}).status_code == 400
    assert len(actions(live, "alice")) == before


def test_who_may_not_see_users_x_does_not_see_what_x_did(live: RunningServer) -> None:
    device = f"devices.{unique('seen')}"
    event_id = fire_alarm(live, device)
    with live.http("alice") as alice:
        assert alice.post(f"/events/{event_id}/acknowledge", json={"text": "seen"}).status_code == 200
    live.server.history.flush()

    def visible(user: str) -> list[str]:
        with live.http(user) as http:
            answer = http.get("/history", params={"mask": "users.alice", "event": "action", "limit": 1000})
            assert answer.status_code == 200, answer.text
            return [e["data"][0]["where"] for e in answer.json()["events"]]

    assert device in visible("auditor")  # manager of users.**
    assert visible("bob") == []  # observer on users.alice is not enough
    assert visible("plc") == []  # no grant there at all
    assert visible("alice") == []  # nor is one's own context (no manager on it)


def test_alarm_acknowledgements_and_clears(tmp_path: Path) -> None:
    users = {"netop": {"**": "observer", "net.**": "operator"}, "looker": {"**": "observer"}}
    with RunningServer(tmp_path / "data", catalog=alarm_catalog(tmp_path / "contexts"), users=users) as live:
        live.server.engine.add_context("net.sw1")
        alarm = live.server.fire("net.sw1", "linkDown", {"ifIndex": 3}, durable=True).id
        with Trail(live, "netop") as trail, live.http("netop") as netop:
            answer = netop.post(f"/alarms/{alarm}/acknowledge", json={"text": "cable checked"})
            assert answer.status_code == 200, answer.text
        assert (trail.action["what"], trail.action["where"], trail.action["target"]) == (
            "acknowledge_alarm",
            "net.sw1",
            f"alarm {alarm}",
        )
        assert trail.action["result"] == "success" and trail.action["detail"] == "cable checked"
        with Trail(live, "looker") as trail, live.http("looker") as looker:
            assert looker.post(f"/alarms/{alarm}/clear").status_code == 403
        assert (trail.action["what"], trail.action["result"]) == ("clear_alarm", "denied")
        for what in ("unacknowledge_alarm", "clear_alarm"):
            with Trail(live, "netop") as trail, live.http("netop") as netop:
                path = what.removesuffix("_alarm")
                assert netop.post(f"/alarms/{alarm}/{path}").status_code == 200
            assert (trail.action["what"], trail.action["where"], trail.action["result"]) == (
                what,
                "net.sw1",
                "success",
            )
