"""Events of contexts removed at run time, read as every level over HTTP, before and after a restart.

A context's events are never easier to read once the context is gone, nor
after the server restarted: the answer of every user is the one they got
while the context lived.
"""

from __future__ import annotations

from pathlib import Path

from net_helpers import USERS, Live, write_config

GONE_USER = "users.ghost"  # a user's context removed for good
OWN_USER = "users.operator"  # made by the operator's login, removed, made again by its next login


def _answers(live: Live, ids: dict[str, int]) -> dict[tuple[str, str], tuple[int, bool]]:
    """(user, what) -> (status of GET /events/ID, listed by GET /history)."""
    found = {}
    for user in USERS:
        with live.client(user) as client:
            listed = client.get("/history", params={"limit": 1000})
            assert listed.status_code == 200, listed.text
            visible = {event["id"] for event in listed.json()["events"]}
            for what, event_id in ids.items():
                found[(user, what)] = (client.get(f"/events/{event_id}").status_code, event_id in visible)
    return found


def test_events_of_removed_contexts_read_the_same_as_every_level_after_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path, database_url=f"sqlite:///{tmp_path / 'data' / 'history.sqlite3'}")
    live = Live(config)
    try:
        live.token("operator")  # logging in fires login in users.operator, added for it
        with live.client("admin") as admin:
            for path in (GONE_USER, "alerts.gone", "alerts.kept", "devices.gone"):
                assert admin.post("/contexts", json={"path": path}).status_code == 201
            fired = {}
            for what, path, event, data in (
                ("alert", "alerts.gone", "alert", {"message": "too hot"}),
                ("kept", "alerts.kept", "alert", {"message": "still hot"}),
                ("error", "devices.gone", "error", {"code": "E1", "message": "broken"}),
                ("login", GONE_USER, "login", {"username": "ghost", "address": "192.0.2.1"}),
            ):
                answer = admin.post(
                    "/fire", json={"context": path, "event": event, "data": data, "durable": True}
                )
                assert answer.status_code == 200, answer.text
                fired[what] = answer.json()["event"]["id"]
            logins = admin.get("/history", params={"mask": OWN_USER, "event": "login"}).json()["events"]
            fired["own_login"] = logins[0]["id"]
            alive = _answers(live, fired)
            for path in (GONE_USER, OWN_USER, "alerts.gone", "devices.gone"):
                assert admin.delete(f"/contexts/{path}").status_code == 200
        removed = _answers(live, fired)
    finally:
        live.stop()

    live = Live(config)
    try:
        restarted = _answers(live, fired)
        with live.client("admin") as admin:
            kept = admin.get("/contexts/alerts.kept")
            assert kept.status_code == 200, kept.text  # added at run time: still there
            assert [e["requires_acknowledgement"] for e in kept.json()["events"] if e["name"] == "alert"] == [
                True
            ]
            for path in (GONE_USER, "alerts.gone", "devices.gone"):
                assert admin.get(f"/contexts/{path}").status_code == 404  # removed: still gone
    finally:
        live.stop()

    assert removed == alive
    assert restarted == alive
    # The manager-only login of a user whose context is gone: the operator (observer
    # everywhere, its own login included) never sees it; managers of users.** do.
    for login in ("login", "own_login"):
        assert alive[("operator", login)] == (404, False)
        assert alive[("manager", login)] == (200, True)
    assert alive[("observer", "error")] == (200, True)
    assert alive[("nobody", "error")] == (404, False)
