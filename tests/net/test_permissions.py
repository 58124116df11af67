"""The permission matrix: users x actions x contexts, over real HTTP (and sessions for live events).

``LEVELS`` is what the test users' grants (net_helpers.USERS) mean in each
context, written out by hand; ``expected`` is the rule of each action:
a context a user holds no grant in answers exactly like a missing one (404),
a visible context without the level needed answers 403.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from net_helpers import USERS, Live

from linkserver.core.levels import Permission
from linkserver.history.base import HistoryQuery
from linkserver.net.protocol import Session

PLC1, PLC2, ALERT, USER = "devices.plc1", "devices.plc2", "alerts.perm_alert", "users.perm_user"
CONTEXTS = (PLC1, PLC2, ALERT)
N, OB, OP, MA, EN, AD = (
    Permission.NONE,
    Permission.OBSERVER,
    Permission.OPERATOR,
    Permission.MANAGER,
    Permission.ENGINEER,
    Permission.ADMIN,
)
LEVELS: dict[str, dict[str, Permission]] = {
    #             PLC1 PLC2 ALERT USER root
    "admin": dict(zip((*CONTEXTS, USER, ""), (AD, AD, AD, AD, AD), strict=True)),
    "engineer": dict(zip((*CONTEXTS, USER, ""), (EN, EN, EN, EN, EN), strict=True)),
    "manager": dict(zip((*CONTEXTS, USER, ""), (MA, MA, MA, MA, OB), strict=True)),
    "operator": dict(zip((*CONTEXTS, USER, ""), (OP, OP, OP, OB, OB), strict=True)),
    "observer": dict(zip((*CONTEXTS, USER, ""), (OB, OB, N, N, N), strict=True)),
    "plc1only": dict(zip((*CONTEXTS, USER, ""), (OP, N, N, N, N), strict=True)),
    "nobody": dict(zip((*CONTEXTS, USER, ""), (N, N, N, N, N), strict=True)),
}
ACTIONS = ("read", "fire", "get", "acknowledge", "delete", "add_child")
NEEDS = {"read": OB, "fire": OP, "get": OB, "acknowledge": OP, "delete": MA, "add_child": AD}
SUCCESS = {"add_child": 201}


def expected(user: str, context: str, action: str) -> int:
    level = LEVELS[user][context]
    if level < OB:
        return 404
    return SUCCESS.get(action, 200) if level >= NEEDS[action] else 403


@pytest.fixture(scope="module")
def contexts(live: Live) -> Live:
    for path, template in ((PLC1, None), (PLC2, None), (ALERT, "alert"), (USER, None)):
        if live.server.tree.find(path) is None:
            live.server.engine.add_context(path, definitions=template)
    return live


def test_the_levels_table_matches_the_grants() -> None:
    from linkserver.core.permissions import Grants

    for user, levels in LEVELS.items():
        grants = Grants(USERS[user])
        assert {path: grants.level_for(path) for path in levels} == levels, user


def _fire_args(context: str) -> dict[str, Any]:
    if context == ALERT:
        return {"event": "alert", "data": {"message": "too hot"}}
    return {"event": "connected"}


def _event(live: Live, context: str) -> int:
    args = _fire_args(context)
    return live.server.fire(context, args["event"], args.get("data"), durable=True).id


def _act(live: Live, user: str, context: str, action: str) -> Any:
    client = live.client(user)
    if action == "read":
        return client.get(f"/contexts/{context}")
    if action == "fire":
        return client.post("/fire", json={"context": context, **_fire_args(context), "durable": True})
    if action == "add_child":
        return client.post("/contexts", json={"path": f"{context}.by_{user}"})
    event_id = _event(live, context)
    if action == "get":
        return client.get(f"/events/{event_id}")
    if action == "acknowledge":
        return client.post(f"/events/{event_id}/acknowledge", json={"text": f"seen by {user}"})
    assert action == "delete"
    return client.delete(f"/events/{event_id}")


@pytest.mark.parametrize("user", list(LEVELS))
def test_permission_matrix(contexts: Live, user: str) -> None:
    live = contexts
    problems = []
    for context in CONTEXTS:
        for action in ACTIONS:
            before = live.server.history.count(HistoryQuery(masks=(context,)))
            response = _act(live, user, context, action)
            want = expected(user, context, action)
            if response.status_code != want:
                problems.append(
                    f"{user} {action} {context}: {response.status_code}, expected {want}: {response.text}"
                )
                continue
            if want >= 400:
                error = response.json()["error"]
                assert error["type"] in ("PermissionDenied", "ContextNotFound", "EventNotFound"), error
                stored_now = 1 if action in ("get", "acknowledge", "delete") else 0
                after = live.server.history.count(HistoryQuery(masks=(context,)))
                assert after == before + stored_now, f"{user} {action} {context} stored something"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("user", list(LEVELS))
def test_purge_needs_engineer_on_root(contexts: Live, user: str) -> None:
    response = contexts.client(user).post("/purge")
    assert response.status_code == (200 if LEVELS[user][""] >= EN else 403), response.text


@pytest.mark.parametrize("user", list(LEVELS))
def test_history_shows_only_what_each_user_may_receive(contexts: Live, user: str) -> None:
    live = contexts
    live.server.fire(USER, "login", {"username": "perm_user", "address": None}, durable=True)  # manager
    for context in CONTEXTS:
        _event(live, context)
    events = live.client(user).get("/history", params={"mask": [*CONTEXTS, USER], "limit": 10000})
    seen = {e["context"] for e in events.json()["events"]} if events.status_code == 200 else set()
    visible = {c for c in CONTEXTS if LEVELS[user][c] >= OB}
    if LEVELS[user][USER] >= MA:  # login needs manager to receive
        visible.add(USER)
    assert seen == visible


@pytest.mark.parametrize("user", list(LEVELS))
def test_live_events_reach_only_those_who_may_receive_them(contexts: Live, user: str) -> None:
    live = contexts
    session = Session(live.app.state.gateway, live.server.users[user])
    session.receive(json.dumps({"type": "subscribe", "mask": "**"}))
    assert session.take()[0]["type"] == "subscribed"
    try:
        live.server.fire(USER, "login", {"username": "perm_user", "address": None})
        for context in CONTEXTS:
            _event(live, context)
        seen = {m["event"]["context"] for m in session.take() if m["type"] == "event"}
    finally:
        session.close()
    visible = {c for c in CONTEXTS if LEVELS[user][c] >= OB} | ({USER} if LEVELS[user][USER] >= MA else set())
    assert seen & {*CONTEXTS, USER} == visible


def test_an_invisible_context_answers_exactly_like_a_missing_one(contexts: Live) -> None:
    client = contexts.client("plc1only")
    for method, url, body in (
        ("GET", "/contexts/{}", None),
        ("POST", "/fire", {"context": "{}", "event": "connected"}),
        ("DELETE", "/contexts/{}", None),
        ("GET", "/tree?path={}", None),
        ("POST", "/contexts", {"path": "{}.child"}),
    ):
        answers = []
        for path in (PLC2, "devices.no_such_plc"):
            content = json.dumps(body).replace("{}", path) if body else None
            response = client.request(
                method, url.replace("{}", path), content=content, headers={"content-type": "application/json"}
            )
            answers.append(
                (
                    response.status_code,
                    response.json()["error"]["type"],
                    response.json()["error"]["message"].replace(path, "PATH"),
                )
            )
        assert answers[0] == answers[1] and answers[0][0] == 404, (method, url, answers)


def test_tree_shows_only_visible_branches(contexts: Live) -> None:
    def names(node: dict[str, Any]) -> set[str]:
        return {node["path"]} | {p for child in node["children"] or () for p in names(child)}

    observer = names(contexts.client("observer").get("/tree").json())
    assert {"", "devices", PLC1, PLC2} <= observer and not {"alerts", "users", ALERT} & observer
    assert names(contexts.client("plc1only").get("/tree").json()) == {"", "devices", PLC1}
    assert contexts.client("plc1only").get("/tree").json()["description"] == ""  # root itself is not granted
    assert contexts.client("nobody").get("/tree").status_code == 404


def test_event_not_defined_lists_only_definitions_the_user_may_see(contexts: Live) -> None:
    response = contexts.client("operator").post("/fire", json={"context": USER, "event": "nope"})
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "childAdded" in message and "login" not in message  # login needs manager to receive, admin to fire
