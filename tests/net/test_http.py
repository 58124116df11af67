"""The HTTP API against a real server: browse, fire, history, acknowledge, delete, purge, OpenAPI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from net_helpers import TLS, Live
from starlette.routing import Route, WebSocketRoute


def test_me_shows_the_user_and_grants(live: Live) -> None:
    with live.client("operator") as client:
        assert client.get("/me").json() == {
            "user": "operator",
            "grants": {"**": "observer", "devices.**": "operator", "alerts.**": "operator"},
            "component": False,
        }


def test_tree_shows_contexts_with_depth(live: Live, device: str) -> None:
    with live.client("admin") as client:
        root = client.get("/tree").json()
        assert (root["path"], root["name"]) == ("", "root")
        devices = next(c for c in root["children"] if c["name"] == "devices")
        assert device in [c["path"] for c in devices["children"]]
        shallow = client.get("/tree", params={"path": "devices", "depth": 0}).json()
        assert shallow["children"] is None and shallow["description"]


def test_context_lists_definitions_with_formats(live: Live, device: str) -> None:
    with live.client("operator") as client:
        context = client.get(f"/contexts/{device}").json()
    assert context["path"] == device and context["children"] == []
    measurement = next(d for d in context["events"] if d["name"] == "measurement")
    assert measurement["persistent"] is True and measurement["fire_permissions"] == "operator"
    assert measurement["format"]["max_records"] is None
    assert [f["name"] for f in measurement["format"]["fields"]] == ["quantity", "value", "unit"]
    assert measurement["format"]["fields"][2]["default"] == ""


def test_fire_returns_the_event(live: Live, device: str) -> None:
    with live.client("operator") as client:
        response = client.post(
            "/fire",
            json={
                "context": device,
                "event": "measurement",
                "level": "warning",
                "durable": True,
                "data": [
                    {"quantity": "temperature", "value": 21},
                    {"quantity": "speed", "value": 3.5, "unit": "rpm"},
                ],
            },
        )
        assert response.status_code == 200, response.text
        event = response.json()["event"]
        assert (event["context"], event["name"], event["level"], event["author"]) == (
            device,
            "measurement",
            "WARNING",
            "operator",
        )
        assert event["data"][0] == {"quantity": "temperature", "value": 21.0, "unit": ""}
        stored = client.get(f"/events/{event['id']}").json()["event"]
        assert stored == event


def test_batch_fires_in_order_and_reports_each_error(live: Live, device: str) -> None:
    with live.client("operator") as client:
        response = client.post(
            "/fire/batch",
            json={
                "durable": True,
                "events": [
                    {"context": device, "event": "connected"},
                    {"context": device, "event": "stateChanged", "data": {"old": "offline", "new": "flying"}},
                    {"context": device, "event": "disconnected"},
                ],
            },
        )
        results = response.json()["results"]
        assert response.status_code == 200
        assert results[0]["event"]["name"] == "connected" and results[2]["event"]["name"] == "disconnected"
        assert results[0]["event"]["id"] < results[2]["event"]["id"]
        assert results[1]["error"]["type"] == "DataTableError"
        assert results[1]["error"]["fields"][0]["field"] == "new"
        page = client.get("/history", params={"mask": device, "order": "oldest"}).json()
        assert [e["name"] for e in page["events"]] == ["connected", "disconnected"]


def test_history_filters_and_pages_with_cursors(live: Live, device: str) -> None:
    with live.client("operator") as client:
        for value in range(7):
            response = client.post(
                "/fire",
                json={"context": device, "event": "measurement", "data": [{"quantity": "t", "value": value}]},
            )
            assert response.status_code == 200, response.text
        client.post("/fire", json={"context": device, "event": "connected", "durable": True})
        params = {
            "mask": device,
            "event": "measurement",
            "filter": "data.value >= 2",
            "limit": 2,
            "order": "oldest",
            "count": "true",
        }
        seen, cursor = [], None
        while True:
            page = client.get("/history", params={**params, **({"cursor": cursor} if cursor else {})}).json()
            assert page["count"] == 5
            seen += [e["data"][0]["value"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [2.0, 3.0, 4.0, 5.0, 6.0]
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        newest = client.get(
            "/history", params={"mask": device, "since": since, "limit": 1, "min_level": "notice"}
        ).json()
        assert [e["name"] for e in newest["events"]] == ["connected"] and newest["next_cursor"]


def test_acknowledge_and_get_with_acknowledgements(live: Live, device: str) -> None:
    with live.client("operator") as client:
        alert = live.server.fire(device, "error", {"code": "E7", "message": "overheated"}, durable=True)
        unacked = client.get("/history", params={"mask": device, "acknowledged": "false"}).json()
        assert [e["id"] for e in unacked["events"]] == [alert.id]
        response = client.post(f"/events/{alert.id}/acknowledge", json={"text": "fan replaced"})
        assert response.status_code == 200, response.text
        [ack] = response.json()["event"]["acknowledgements"]
        assert (ack["user"], ack["text"]) == ("operator", "fan replaced")
        assert client.get(f"/events/{alert.id}").json()["event"]["acknowledgements"] == [ack]
        assert client.get("/history", params={"mask": device, "acknowledged": "false"}).json()["events"] == []


def test_manager_deletes_and_engineer_purges(live: Live, device: str) -> None:
    event = live.server.fire(device, "connected", durable=True)
    with live.client("manager") as client:
        assert client.delete(f"/events/{event.id}").json() == {}
        assert client.get(f"/events/{event.id}").status_code == 404
    with live.client("engineer") as client:
        response = client.post("/purge")
        assert response.status_code == 200 and isinstance(response.json()["removed"], int)


def test_admin_adds_and_removes_contexts(live: Live) -> None:
    with live.client("admin") as client:
        response = client.post("/contexts", json={"path": "devices.http_added", "description": "by HTTP"})
        assert response.status_code == 201 and response.json() == {"path": "devices.http_added"}
        assert client.get("/contexts/devices.http_added").json()["description"] == "by HTTP"
        lab = client.post("/contexts", json={"path": "alerts.lab_alert", "template": "alert"})
        assert lab.status_code == 201
        assert [d["name"] for d in client.get("/contexts/alerts.lab_alert").json()["events"]] == [
            "alert",
            "alertCleared",
            "escalated",
        ]
        assert client.post("/contexts", json={"path": "devices.http_added"}).status_code == 409
        removed = client.delete("/contexts/devices.http_added").json()
        assert removed == {"removed": ["devices.http_added"]}
        assert client.get("/contexts/devices.http_added").status_code == 404


def test_openapi_documents_every_route(live: Live) -> None:
    document = httpx.get(f"{live.url}/openapi.json", verify=TLS).json()
    assert document["openapi"].startswith("3.")
    for route in live.app.routes:
        assert isinstance(route, Route | WebSocketRoute)
        if isinstance(route, WebSocketRoute):  # not an HTTP operation: its messages are schemas
            assert "SubscribeMessage" in document["components"]["schemas"]
            continue
        assert route.path in document["paths"], route.path
        if isinstance(route, Route) and route.methods:
            for method in route.methods - {"HEAD"}:
                assert method.lower() in document["paths"][route.path], (method, route.path)
