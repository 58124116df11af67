"""Messages, instructions and value labels in the network API: every event answer, the
WebSocket pushes, the definition listing, and filters by label."""

from __future__ import annotations

from net_helpers import Live, recv_json, request

GONE = "the device stopped answering"


def test_events_carry_their_message_and_labels_in_every_answer(live: Live, device: str) -> None:
    with live.client("operator") as client:
        fired = client.post(
            "/fire",
            json={"context": device, "event": "disconnected", "data": {"reason": "timeout"}, "durable": True},
        ).json()["event"]
        assert fired["message"] == f"disconnected: {GONE}"
        assert fired["labels"] == [{"reason": GONE}] and fired["data"] == [{"reason": "timeout"}]
        stored = client.get(f"/events/{fired['id']}").json()["event"]
        assert (stored["message"], stored["labels"]) == (fired["message"], fired["labels"])
        assert "instructions" not in stored  # disconnected has none
        page = client.get("/history", params={"mask": device, "filter": f'data.reason == "{GONE}"'}).json()
        assert [e["id"] for e in page["events"]] == [fired["id"]]
        assert page["events"][0]["message"] == fired["message"]
        acked = client.post(f"/events/{fired['id']}/acknowledge", json={"text": "cable"}).json()["event"]
        assert acked["message"] == fired["message"]


def test_the_event_detail_has_the_instructions_and_the_listing_the_template(live: Live, device: str) -> None:
    with live.client("operator") as client:
        fired = client.post(
            "/fire",
            json={
                "context": device,
                "event": "error",
                "data": {"code": "E7", "message": "hot"},
                "durable": True,
            },
        ).json()["event"]
        detail = client.get(f"/events/{fired['id']}").json()["event"]
        assert detail["message"] == "error E7: hot"
        assert detail["instructions"].startswith("Look the code up in the device's manual.")
        events = {d["name"]: d for d in client.get(f"/contexts/{device}").json()["events"]}
    assert events["error"]["message"] == "error {data.code}: {data.message}"
    assert events["error"]["instructions"].startswith("Look the code up")
    reason = events["disconnected"]["format"]["fields"][0]
    assert {"value": "timeout", "label": GONE} in reason["labels"]


def test_pushed_events_carry_the_message_and_a_label_filter_works(live: Live, device: str) -> None:
    with live.ws("operator") as ws:
        subscribe = {
            "type": "subscribe",
            "ref": 1,
            "mask": device,
            "event": "disconnected",
            "filter": f'data.reason == "{GONE}"',
        }
        answer = request(ws, subscribe)
        assert answer["type"] == "subscribed", answer
        live.server.fire(device, "disconnected", {"reason": "lost"})
        live.server.fire(device, "disconnected", {"reason": "timeout"})
        pushed = recv_json(ws)
    assert pushed["type"] == "event"
    assert pushed["event"]["data"] == [{"reason": "timeout"}]
    assert pushed["event"]["message"] == f"disconnected: {GONE}"
