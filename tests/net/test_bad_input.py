"""Bad input gets the right status and a clear message; the server keeps serving and stores nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from net_helpers import TLS, Live, recv_json, request

from linkserver.history.base import HistoryQuery


@pytest.fixture
def client(live: Live) -> Iterator[httpx.Client]:
    with live.client("operator") as client:
        yield client


@pytest.fixture
def stores_nothing(live: Live, device: str) -> Iterator[str]:
    """The device; afterwards its history must be empty and the server still answering."""
    yield device
    assert live.server.history.count(HistoryQuery(masks=(device,))) == 0
    with live.client("operator") as client:
        assert client.get("/me").status_code == 200


def _error(response: httpx.Response, status: int, kind: str, *needles: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == kind, error
    for needle in needles:
        assert needle in error["message"], (needle, error["message"])
    return error


@pytest.mark.parametrize(
    ("body", "status", "kind", "needle"),
    [
        ('{"context": ', 400, "BadRequest", "not valid JSON"),
        ("[]", 400, "BadRequest", "expected `object`, got `array`"),
        (
            '{"context": 7, "event": "connected"}',
            400,
            "BadRequest",
            "'context': expected `str`, got `int`",
        ),
        (
            '{"context": "D", "event": ["connected"]}',
            400,
            "BadRequest",
            "'event': expected `str`, got `array`",
        ),
        ('{"context": "D", "event": "connected", "level": true}', 400, "BadRequest", "'level'"),
        (
            '{"context": "D", "event": "connected", "level": "loud"}',
            400,
            "BadRequest",
            "'level': expected a level: NONE, NOTICE",
        ),
        ('{"context": "D", "event": "connected", "durable": "yes"}', 400, "BadRequest", "'durable'"),
        ('{"context": "D", "event": "connected", "dat": {}}', 400, "BadRequest", "unknown key 'dat'"),
        ('{"event": "connected"}', 400, "BadRequest", "'context' is required"),
        ('{"context": "D..x", "event": "connected"}', 400, "BadRequest", "names separated by single dots"),
        ('{"context": "D", "event": ""}', 400, "BadRequest", "'event': expected a name"),
        (
            '{"context": "D", "event": "x", "data": {"v": "\\ud800"}}',
            400,
            "BadRequest",
            "lone UTF-16 surrogate",
        ),
        ('{"context": "D", "event": "x", "data": {"v": 1e400}}', 400, "BadRequest", "out of range"),
        ('{"context": "D", "event": "x", "data": {"v": NaN}}', 400, "BadRequest", "NaN"),
        ('{"context": "devices.no_such", "event": "connected"}', 404, "ContextNotFound", "devices.no_such"),
        ('{"context": "D", "event": "exploded"}', 404, "EventNotDefined", "'exploded'"),
        ('{"context": "D", "event": "connected", "data": "text"}', 400, "BadRequest", "'data'"),
    ],
)
def test_bad_fire_requests(
    client: httpx.Client, stores_nothing: str, body: str, status: int, kind: str, needle: str
) -> None:
    response = client.post(
        "/fire",
        content=body.replace('"D', f'"{stores_nothing}'),
        headers={"content-type": "application/json"},
    )
    _error(response, status, kind, needle)


def test_invalid_data_names_every_bad_field(client: httpx.Client, stores_nothing: str) -> None:
    response = client.post(
        "/fire",
        json={
            "context": stores_nothing,
            "event": "error",
            "data": {"code": "", "message": 3, "colour": "red"},
        },
    )
    error = _error(response, 422, "DataTableError", stores_nothing)
    assert {f["field"] for f in error["fields"]} == {"code", "message", "colour"}  # type: ignore[union-attr]


def test_unknown_event_names_context_and_lists_defined_events(
    client: httpx.Client, stores_nothing: str
) -> None:
    response = client.post("/fire", json={"context": stores_nothing, "event": "conected"})
    _error(response, 404, "EventNotDefined", "'conected'", stores_nothing, "connected", "measurement")


def test_oversized_bodies_and_batches_get_413(client: httpx.Client, live: Live, stores_nothing: str) -> None:
    huge = json.dumps(
        {
            "context": stores_nothing,
            "event": "error",
            "data": {"code": "x", "message": "y" * (live.limits.max_message_bytes + 1)},
        }
    )
    _error(client.post("/fire", content=huge, headers={"content-type": "application/json"}), 413, "TooLarge")
    events = [{"context": stores_nothing, "event": "connected"}] * (live.limits.max_batch + 1)
    _error(client.post("/fire/batch", json={"events": events}), 413, "TooLarge", "batch")


@pytest.mark.parametrize(
    ("params", "kind", "needle"),
    [
        ({"filter": "level >= "}, "FilterError", ""),
        ({"filter": "data.x ~= 3"}, "FilterError", ""),
        ({"min_level": "urgent"}, "BadRequest", "'min_level': expected a level"),
        ({"mask": "devices.**x"}, "BadRequest", "'mask[0]': expected a context mask"),
        ({"event": "no-dash"}, "BadRequest", "'event[0]': expected a name"),
        ({"event": ""}, "BadRequest", "'event[0]': expected a name"),
        ({"mask": ""}, "BadRequest", "'mask[0]': expected a context mask"),
        ({"cursor": "garbage"}, "InvalidCursor", "garbage"),
        ({"limit": "0"}, "BadRequest", "'limit'"),
        ({"limit": "many"}, "BadRequest", "'limit': expected `int`"),
        ({"since": "yesterday"}, "BadRequest", "'since': expected an RFC 3339 time, e.g. 2026-05"),
        ({"since": "2024-05-01T12:00:00"}, "BadRequest", "timezone"),
        ({"acknowledged": "maybe"}, "BadRequest", "'acknowledged': expected `bool"),
        ({"order": "random"}, "BadRequest", "'order': 'random' is not one of: newest, oldest"),
        ({"mas": "x"}, "BadRequest", "unknown key 'mas'"),
        ({"limit": ["1", "2"]}, "BadRequest", "given 2 times"),
    ],
)
def test_bad_history_queries_get_400(
    client: httpx.Client, params: dict[str, str], kind: str, needle: str
) -> None:
    _error(client.get("/history", params=params), 400, kind, needle)


def test_bad_event_ids_and_acknowledgements(client: httpx.Client, live: Live, device: str) -> None:
    _error(client.get("/events/abc"), 400, "BadRequest", "events/abc", "'id'")
    _error(client.get("/events/123456"), 404, "EventNotFound", "123456")
    event = live.server.fire(device, "connected", durable=True)
    _error(client.post(f"/events/{event.id}/acknowledge", json={"text": "   "}), 400, "BadRequest", "'text'")
    _error(client.post(f"/events/{event.id}/acknowledge", json={"txt": "x"}), 400, "BadRequest", "'txt'")
    _error(client.post(f"/events/{event.id}/acknowledge", content="nope"), 400, "BadRequest", "JSON")
    assert live.server.history.get(event.id).acknowledgements == ()


def test_bad_tree_changes(live: Live) -> None:
    with live.client("admin") as admin:
        _error(admin.post("/contexts", json={"path": "devices.bad name"}), 400, "BadRequest", "'path'")
        _error(
            admin.post("/contexts", json={"path": "devices.t1", "template": "gizmo"}),
            404,
            "TemplateNotFound",
            "gizmo",
        )
        _error(admin.post("/contexts", json={"path": "nowhere.x"}), 404, "ContextNotFound", "nowhere")
        _error(admin.post("/contexts", json={"path": ["devices"]}), 400, "BadRequest", "'path'")
        _error(admin.delete("/contexts/root"), 400, "InvalidName", "root")
        _error(admin.get("/tree", params={"depth": "-1"}), 400, "BadRequest", "'depth'")
        assert live.server.tree.find("devices.t1") is None


def test_unknown_routes_and_methods_answer_json(client: httpx.Client) -> None:
    _error(client.get("/nothing/here"), 404, "NotFound", "/api/v1/nothing/here")
    response = client.put("/fire", json={})
    assert response.status_code == 405 and response.json()["error"]["type"] == "BadRequest"


def test_bad_websocket_messages_get_errors_on_an_open_connection(live: Live, device: str) -> None:
    with live.ws("operator") as ws:
        assert request(ws, {"type": "fire", "ref": 1, "context": device})["error"]["type"] == "BadRequest"
        ws.send("{{{")
        assert recv_json(ws)["error"]["type"] == "BadRequest"
        ws.send(b'{"type": "ping", "ref": "binary"}')
        assert recv_json(ws) == {"type": "pong", "ref": "binary"}
        ws.send(json.dumps({"type": "ping", "ref": 2, "pad": "x" * (live.limits.max_message_bytes + 10)}))
        too_big = recv_json(ws)
        assert too_big["type"] == "error" and too_big["error"]["type"] == "TooLarge"
        answer = request(ws, {"type": "subscribe", "ref": 3, "mask": device, "filter": "data.adress == 'x'"})
        assert answer["error"]["type"] == "FilterError" and answer["ref"] == 3
        assert request(ws, {"type": "ping", "ref": 4}) == {"type": "pong", "ref": 4}
    assert live.server.history.count(HistoryQuery(masks=(device,))) == 0


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("POST", "/acknowledge")])
@pytest.mark.parametrize("event_id", [str(2**63), str(2**64), "9" * 40, "0"])
def test_event_ids_outside_64_bits_are_a_400_not_a_500(
    client: httpx.Client, method: str, suffix: str, event_id: str
) -> None:
    body = {"text": "done"} if method == "POST" else None
    _error(client.request(method, f"/events/{event_id}{suffix}", json=body), 400, "BadRequest", "'id'")


def test_a_wrong_method_is_405_naming_the_allowed_ones(client: httpx.Client) -> None:
    response = client.put("/fire", json={})
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    response = client.patch("/contexts/devices")
    assert response.status_code == 405 and set(response.headers["allow"].split(", ")) == {
        "GET",
        "HEAD",
        "DELETE",
    }
    assert "GET" in response.json()["error"]["message"]


def test_the_document_refuses_the_empty_names_the_server_refuses(client: httpx.Client, live: Live) -> None:
    document = httpx.get(f"{live.url}/openapi.json", verify=TLS).json()
    params = {p["name"]: p["schema"] for p in document["paths"]["/api/v1/history"]["get"]["parameters"]}
    for name in ("event", "mask"):
        pattern = re.compile(params[name]["items"]["pattern"])
        assert pattern.search("") is None
        _error(client.get("/history", params={name: ""}), 400, "BadRequest", f"'{name}[0]'")


@pytest.mark.parametrize("count", ["false", "true"])
def test_a_history_filter_with_a_typo_is_refused_as_a_subscription_is(
    client: httpx.Client, live: Live, device: str, count: str
) -> None:
    live.server.fire(device, "measurement", [{"quantity": "t", "value": 5.0}], durable=True)
    params = {"mask": device, "event": "measurement", "filter": "data.valu > 3", "count": count}
    answer = client.get("/history", params=params)
    _error(answer, 400, "FilterError", "data.valu", "did you mean 'data.value'")
    params["filter"] = "data.value > 3"
    assert len(client.get("/history", params=params).json()["events"]) == 1
    # Without a mask or an event name the formats of every visible definition count.
    _error(client.get("/history", params={"filter": "data.no_such_field == 1"}), 400, "FilterError")
    assert client.get("/history", params={"filter": "data.value > 3"}).status_code == 200
