"""Users managed at run time over the API: each change is stored, takes effect at once and is an event."""

from __future__ import annotations

import time
from typing import Any

import pytest
from net_helpers import Live, closed_with, request, write_config
from websockets.sync.client import connect

from linkserver.core.levels import Permission
from linkserver.net.connections import ENDED, REGRANTED


def _events(live: Live, user: str, name: str) -> list[dict[str, Any]]:
    with live.client("admin") as admin:
        page = admin.get("/history", params={"mask": f"users.{user}", "event": name, "order": "oldest"})
    assert page.status_code == 200, page.text
    return page.json()["events"]


def _login(live: Live, user: str, password: str) -> Any:
    with live.client() as client:
        return client.post("/login", json={"user": user, "password": password})


def test_admin_adds_a_user_who_can_log_in_at_once_and_the_event_names_no_secret(make_live: Any) -> None:
    live = make_live()
    with live.client("admin") as admin:
        answer = admin.post(
            "/users", json={"name": "carol", "password": "carol-secret", "grants": {"devices.**": "operator"}}
        )
        assert answer.status_code == 201, answer.text
        user = answer.json()["user"]
        assert user["name"] == "carol" and user["grants"] == {"devices.**": "operator"} and user["password"]
        again = admin.post("/users", json={"name": "carol", "password": "carol-secret"})
        assert again.status_code == 409 and again.json()["error"]["type"] == "UserExists"
        listed = admin.get("/users").json()["users"]
        assert "carol" in [u["name"] for u in listed] and all("hash" not in str(u) for u in listed)
    assert live.server.tree.find("users.carol") is not None
    login = _login(live, "carol", "carol-secret")
    assert login.status_code == 200
    with live.client(token=login.json()["token"]) as carol:
        assert carol.get("/me").json()["grants"] == {"devices.**": "operator"}
        assert carol.get("/users/carol").json()["user"]["name"] == "carol"  # itself: allowed
        assert carol.get("/users").status_code == 403
        assert carol.get("/users/admin").status_code == 403
        assert carol.post("/users", json={"name": "mallory"}).status_code == 403
    [added] = _events(live, "carol", "userAdded")
    assert added["author"] == "admin"
    assert added["data"] == [
        {
            "username": "carol",
            "by": "admin",
            "grants": [{"mask": "devices.**", "level": "operator"}],
            "password": True,
        }
    ]
    assert "carol-secret" not in str(added) and "scrypt" not in str(added)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "bad name", "password": "long-enough"}, "'name': expected a name"),
        ({"name": "short", "password": "abc"}, "'password'"),
        ({"name": "badgrant", "grants": {"devices.**": "boss"}}, "invalid enum value 'boss'"),
        ({"name": "badmask", "grants": {"devices.*x": "observer"}}, "$.grants"),
        ({"name": "extra", "admin": True}, "'admin'"),
        ({"password": "long-enough"}, "'name'"),
    ],
)
def test_bad_users_are_refused_and_nothing_is_added(live: Live, body: dict[str, Any], message: str) -> None:
    with live.client("admin") as admin:
        answer = admin.post("/users", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "BadRequest" and message in error["message"], error
        names = [u["name"] for u in admin.get("/users").json()["users"]]
    assert body.get("name") not in names


def test_grant_and_revoke_take_effect_at_once_and_close_the_users_websockets(make_live: Any) -> None:
    live = make_live()
    device = live.new_device()
    observer_token = live.token("observer")
    with live.ws("observer") as ws:
        assert request(ws, {"type": "ping", "ref": 1})["type"] == "pong"
        with live.client("admin") as admin:
            answer = admin.post(
                "/users/observer/grants", json={"grants": {device: "operator", "alerts.**": "observer"}}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["user"]["grants"] == {
                "devices.**": "observer",
                device: "operator",
                "alerts.**": "observer",
            }
            started = time.monotonic()
            code, reason = closed_with(ws)
            assert time.monotonic() - started < 1.0
            assert code == REGRANTED and "grants of observer changed" in reason
    with live.client(token=observer_token) as observer:  # the session itself stays valid
        assert observer.get("/me").json()["grants"][device] == "operator"
        fired = observer.post("/fire", json={"context": device, "event": "connected"})
        assert fired.status_code == 200, fired.text
        with live.client("admin") as admin:
            revoked = admin.post("/users/observer/revoke", json={"masks": [device]})
            assert revoked.status_code == 200 and device not in revoked.json()["user"]["grants"]
            missing = admin.post("/users/observer/revoke", json={"masks": ["users.**"]})
            assert missing.status_code == 404 and missing.json()["error"]["type"] == "GrantNotFound"
        assert observer.post("/fire", json={"context": device, "event": "connected"}).status_code == 403
    first, second = _events(live, "observer", "grantsChanged")
    assert first["data"][0]["changes"] == [
        {"mask": "alerts.**", "before": None, "after": "observer"},
        {"mask": device, "before": None, "after": "operator"},
    ]
    assert second["data"][0]["changes"] == [{"mask": device, "before": "operator", "after": None}]
    assert second["data"][0]["by"] == "admin"


def test_a_password_set_by_the_admin_ends_the_users_sessions_and_websockets(make_live: Any) -> None:
    live = make_live()
    old_token = live.token("operator")
    with live.ws("operator") as ws:
        assert request(ws, {"type": "ping", "ref": 1})["type"] == "pong"
        with live.client("admin") as admin:
            answer = admin.post("/users/operator/password", json={"password": "a-new-password"})
            assert answer.status_code == 200, answer.text
        code, reason = closed_with(ws)
        assert code == ENDED and "password of operator was changed" in reason
    assert live.client(token=old_token).get("/me").status_code == 401
    assert _login(live, "operator", "operator-pw").status_code == 401
    assert _login(live, "operator", "a-new-password").status_code == 200
    [changed] = _events(live, "operator", "passwordChanged")
    assert changed["data"] == [{"username": "operator", "by": "admin"}]
    assert "a-new-password" not in str(changed)
    [logout] = [e for e in _events(live, "operator", "logout") if e["data"][0]["reason"] == "revoked"]
    assert logout["data"][0]["username"] == "operator"


def test_changing_ones_own_password_needs_the_current_one_and_keeps_this_session(make_live: Any) -> None:
    live = make_live()
    mine, other = live.login("manager"), live.login("manager")
    with live.client(token=mine) as me:
        missing = me.post("/users/manager/password", json={"password": "manager-new-pw"})
        assert missing.status_code == 403 and "current_password" in missing.json()["error"]["message"]
        wrong = me.post(
            "/users/manager/password", json={"password": "manager-new-pw", "current_password": "nope"}
        )
        assert wrong.status_code == 401
        assert (
            me.post(
                "/users/operator/password", json={"password": "operator-new", "current_password": "x"}
            ).status_code
            == 403
        )
        done = me.post(
            "/users/manager/password", json={"password": "manager-new-pw", "current_password": "manager-pw"}
        )
        assert done.status_code == 200, done.text
        assert me.get("/me").status_code == 200  # the session that changed it goes on
    assert live.client(token=other).get("/me").status_code == 401  # every other one ended
    assert _login(live, "manager", "manager-new-pw").status_code == 200


def test_removing_a_user_ends_its_sessions_and_it_cannot_log_in(make_live: Any) -> None:
    live = make_live()
    token = live.token("plc1only")
    with live.ws("plc1only") as ws:
        assert request(ws, {"type": "ping", "ref": 1})["type"] == "pong"
        with live.client("admin") as admin:
            assert admin.delete("/users/plc1only").status_code == 200
            assert admin.delete("/users/plc1only").status_code == 404
            assert admin.delete("/users/admin").status_code == 403  # not oneself
        code, reason = closed_with(ws)
        assert code == ENDED and "plc1only was removed" in reason
    assert live.client(token=token).get("/me").status_code == 401
    assert _login(live, "plc1only", "plc1only-pw").status_code == 401
    assert live.server.tree.find("users.plc1only") is None
    with live.client("admin") as admin:
        page = admin.get("/history", params={"event": "userRemoved"}).json()["events"]
    assert [e["data"][0] for e in page] == [{"username": "plc1only", "by": "admin"}]


def test_users_changed_at_run_time_survive_a_restart_and_the_file_does_not_bring_them_back(
    tmp_path: Any,
) -> None:
    path = write_config(tmp_path, database_url=f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}")
    live = Live(path)
    try:
        with live.client("admin") as admin:
            assert admin.post("/users", json={"name": "dora", "password": "dora-secret"}).status_code == 201
            assert admin.delete("/users/nobody").status_code == 200
            assert (
                admin.post("/users/observer/grants", json={"grants": {"alerts.**": "operator"}}).status_code
                == 200
            )
    finally:
        live.stop()
    again = Live(path)
    try:
        assert _login(again, "dora", "dora-secret").status_code == 200
        assert "nobody" not in again.server.users
        assert again.server.users["observer"].grants.level_for("alerts.x") == Permission.OPERATOR
        assert again.client("admin").get("/me").status_code == 200  # the generated admin password still works
    finally:
        again.stop()


def test_a_change_on_one_node_takes_effect_on_another_within_a_second(tmp_path: Any) -> None:
    database = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = Live(write_config(tmp_path / "a", database_url=database))
    config = write_config(tmp_path / "b", database_url=database)
    config.write_text(config.read_text().replace("server:\n", "server:\n  node_id: 1\n", 1))
    second = Live(config)
    try:
        with first.client("admin") as admin:
            assert admin.post("/users", json={"name": "gina", "password": "gina-secret"}).status_code == 201
        deadline = time.monotonic() + 1.5
        while "gina" not in second.server.users:  # (failed logins meanwhile would be throttled)
            assert time.monotonic() < deadline, "the second node did not see the new user"
            time.sleep(0.05)
        answer = _login(second, "gina", "gina-secret")
        assert answer.status_code == 200, answer.text
        token = answer.json()["token"]
        with connect(f"{second.ws_url}?token={token}", open_timeout=5) as ws:
            assert request(ws, {"type": "ping", "ref": 1})["type"] == "pong"
            with first.client("admin") as admin:
                assert admin.delete("/users/gina").status_code == 200
            code, reason = closed_with(ws, timeout=1.5)
        assert code == ENDED and "gina was removed" in reason
        assert second.client(token=token).get("/me").status_code == 401
    finally:
        second.stop()
        first.stop()
