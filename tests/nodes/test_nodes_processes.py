"""Several ``linkserver serve`` processes on one PostgreSQL are one system: sessions, the tree,
user changes and the purge lock, also after one node is killed with SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

from nodes_helpers import REPO, Node, eventually
from websockets.sync.client import connect

from linkserver.history.sql import SqlHistoryStore
from linkserver.net.connections import ENDED, REGRANTED


def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))  # type: ignore[no-any-return]


def closed_with(ws: Any, timeout: float = 5.0) -> tuple[int, str]:
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "the connection ended without a close frame"
        return exc.rcvd.code, exc.rcvd.reason
    except TimeoutError:
        raise AssertionError(f"the server did not close the connection within {timeout} s") from None


def subscribe(node: Node, token: str, mask: str, event: str = "*") -> Any:
    ws = connect(f"{node.ws_url}?token={token}", open_timeout=10)
    ws.send(json.dumps({"type": "subscribe", "ref": 1, "mask": mask, "event": event}))
    answer = recv(ws)
    assert answer["type"] == "subscribed", answer
    return ws


def test_a_session_opened_on_one_node_works_and_ends_on_every_node(
    start_nodes: Callable[..., list[Node]],
) -> None:
    a, b, c = start_nodes(3)
    token = a.login("operator")
    with b.http(token) as http:
        me = http.get("/me")
        assert me.status_code == 200 and me.json()["user"] == "operator"
    on_b, on_c = subscribe(b, token, "devices.**"), subscribe(c, token, "devices.**")
    with a.http(token) as http:
        assert http.post("/logout").status_code == 200
    # The logout reaches the other nodes through the sessions table's feed (read every 0.5 s).
    assert closed_with(on_b) == (ENDED, "logged out")
    assert closed_with(on_c) == (ENDED, "logged out")
    for node in (a, b, c):
        with node.http(token) as http:
            assert http.get("/me").status_code == 401
    # One logout event in history, not one per node.
    admin = c.login("admin")
    with c.http(admin) as http:
        page = http.get("/history", params={"mask": "users.operator", "event": "logout"}).json()
    assert [e["data"][0]["reason"] for e in page["events"]] == ["logout"]


def test_user_changes_on_one_node_end_sessions_and_connections_on_the_others(
    start_nodes: Callable[..., list[Node]],
) -> None:
    a, b = start_nodes(2)
    admin = a.login("admin")
    operator = b.login("operator")
    watching = subscribe(b, operator, "devices.**")
    with a.http(admin) as http:
        answer = http.post("/users/operator/grants", json={"grants": {"devices.**": "observer"}})
        assert answer.status_code == 200, answer.text
    code, _ = closed_with(watching)
    assert code == REGRANTED
    watching = subscribe(b, operator, "devices.**")
    with a.http(admin) as http:
        answer = http.post("/users/operator/password", json={"password": "a-new-password-1"})
        assert answer.status_code in (200, 204), answer.text
    assert closed_with(watching)[0] == ENDED
    with b.http(operator) as http:
        assert http.get("/me").status_code == 401
    with a.http(admin) as http:
        assert http.get("/me").status_code == 200  # the admin's own session is kept


def test_the_tree_is_one_on_every_node(start_nodes: Callable[..., list[Node]]) -> None:
    a, b, c = start_nodes(3)
    token = a.login("admin")
    watching = subscribe(b, token, "devices.*", "connected")
    with a.http(token) as http:
        assert http.post("/contexts", json={"path": "devices.pump7"}).status_code in (200, 201)

    def has(node: Node, path: str) -> bool:
        with node.http(token) as http:
            return http.get(f"/contexts/{path}").status_code == 200

    eventually(lambda: has(b, "devices.pump7") and has(c, "devices.pump7"), what="devices.pump7 everywhere")
    with c.http(token) as http:
        fired = http.post("/fire", json={"context": "devices.pump7", "event": "connected", "durable": True})
        assert fired.status_code == 200, fired.text
    with b.http(token) as http:  # fired on c: stored once, readable on b
        assert http.get(f"/events/{fired.json()['event']['id']}").status_code == 200
        fired_b = http.post("/fire", json={"context": "devices.pump7", "event": "connected"})
    # b's subscription by mask covers the context another node added.
    assert recv(watching)["event"]["id"] == fired_b.json()["event"]["id"]
    with c.http(token) as http:
        assert http.delete("/contexts/devices.pump7").status_code == 200
    eventually(lambda: not has(a, "devices.pump7") and not has(b, "devices.pump7"), what="pump7 gone")
    watching.close()


def test_acknowledgements_and_deletes_on_one_node_are_seen_on_all(
    start_nodes: Callable[..., list[Node]],
) -> None:
    a, b, c = start_nodes(3)
    token = a.login("admin")
    open_alerts = {"requires_acknowledgement": "true", "acknowledged": "false", "mask": "alerts.**"}
    with a.http(token) as http:
        assert http.post("/contexts", json={"path": "alerts.overheat"}).status_code in (200, 201)
        raised = http.post(
            "/fire",
            json={
                "context": "alerts.overheat",
                "event": "alert",
                "data": {"message": "hot"},
                "durable": True,
            },
        )
        assert raised.status_code == 200, raised.text
    alert = raised.json()["event"]["id"]
    # What the web console's pop-ups ask every two seconds, on another node: the alert is open.
    with b.http(token) as http:
        assert [e["id"] for e in http.get("/history", params=open_alerts).json()["events"]] == [alert]
        acked = http.post(f"/events/{alert}/acknowledge", json={"text": "fan replaced"})
        assert acked.status_code == 200, acked.text
    with c.http(token) as http:
        assert http.get("/history", params=open_alerts).json()["events"] == []
        [ack] = http.get(f"/events/{alert}").json()["event"]["acknowledgements"]
        assert ack["text"] == "fan replaced" and ack["user"] == "admin"
        assert http.delete(f"/events/{alert}").status_code == 200
    with a.http(token) as http:
        assert http.get(f"/events/{alert}").status_code == 404


def test_the_others_go_on_when_one_node_is_killed(
    start_nodes: Callable[..., list[Node]], shared_url: str
) -> None:
    a, b, c = start_nodes(3)
    token = a.login("admin")
    watching = subscribe(c, token, "devices.*", "connected")
    with a.http(token) as http:
        assert http.post("/contexts", json={"path": "devices.before"}).status_code in (200, 201)
    a.kill()
    with b.http(token) as http:  # the session opened on the dead node lives on
        assert http.get("/me").status_code == 200
        assert http.post("/contexts", json={"path": "devices.after"}).status_code in (200, 201)
        assert http.get("/contexts/devices.before").status_code == 200
    with c.http(token) as http:
        eventually(lambda: http.get("/contexts/devices.after").status_code == 200, what="devices.after on c")
    with b.http(token) as http:
        fired = http.post("/fire", json={"context": "devices.after", "event": "connected", "durable": True})
        assert fired.status_code == 200
    with c.http(token) as http:
        assert http.get(f"/events/{fired.json()['event']['id']}").status_code == 200
        fired_here = http.post("/fire", json={"context": "devices.after", "event": "connected"})
    assert recv(watching)["event"]["id"] == fired_here.json()["event"]["id"]
    with b.http(token) as http:
        assert http.post("/logout").status_code == 200
    assert closed_with(watching) == (ENDED, "logged out")
    # A node restarted after the kill gets the tree the others made meanwhile.
    again = Node(a.config.parent, shared_url, 1).wait_serving()
    try:
        fresh = again.login("admin")
        with again.http(fresh) as http:
            assert http.get("/contexts/devices.after").status_code == 200
    finally:
        again.stop()


def test_purge_runs_on_one_node_at_a_time_and_a_killed_holder_lets_go(shared_url: str) -> None:
    store = SqlHistoryStore(shared_url)
    store.start()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from linkserver.history.sql import SqlHistoryStore
                store = SqlHistoryStore({shared_url!r})
                store.start()
                with store.exclusive("purge") as held:
                    print(held, flush=True)
                    time.sleep(60)
                """
            ),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        with store.exclusive("purge") as held:
            assert held is False  # the other node purges now
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

        def free() -> bool:
            with store.exclusive("purge") as held:
                return held

        eventually(free, timeout=10, what="the purge lock after its holder was killed")
    finally:
        if holder.poll() is None:
            holder.kill()
        store.stop()
