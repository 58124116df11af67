"""API tokens managed over the API (/tokens): made and revoked by an admin, shown once, kept
as a hash, working at once and refused at once after the revoke; each change an action event."""

from __future__ import annotations

import json
from typing import Any

from net_helpers import Live, closed_with
from websockets.sync.client import connect

from linkserver.net.connections import ENDED


def _actions(live: Live, actor: str) -> list[dict[str, Any]]:
    with live.client("admin") as admin:
        page = admin.get("/history", params={"mask": f"users.{actor}", "event": "action", "order": "oldest"})
    assert page.status_code == 200, page.text
    return [event["data"][0] for event in page.json()["events"]]


def test_an_admin_makes_a_token_that_works_at_once_and_is_refused_at_once_after_the_revoke(
    live: Live, device: str
) -> None:
    with live.client("admin") as admin:
        made = admin.post("/tokens", json={"name": "plc_line3", "grants": {"devices.**": "operator"}})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert token.startswith("plc_line3.")
        assert made.json()["api_token"]["grants"] == {"devices.**": "operator"}
        assert made.json()["api_token"]["expires"] is None
        listed = admin.get("/tokens").json()["tokens"]
        # The server is the session's: other modules' tokens may be listed too (test_auth's short_lived).
        assert "plc_line3" in [t["name"] for t in listed]
        assert token.split(".", 1)[1] not in json.dumps(listed)  # the secret is shown once only
        with live.client(token=token) as plc:
            assert plc.get("/me").json()["user"] == "plc_line3"
            fired = plc.post("/fire", json={"context": device, "event": "connected"})
            assert fired.status_code == 200 and fired.json()["event"]["author"] == "plc_line3"
            with connect(f"{live.ws_url}?token={token}", open_timeout=5) as ws:
                assert admin.delete("/tokens/plc_line3").status_code == 200
                assert plc.get("/me").status_code == 401  # at once on this node
                code, _ = closed_with(ws)
                assert code == ENDED
        assert "plc_line3" not in [t["name"] for t in admin.get("/tokens").json()["tokens"]]
        gone = admin.delete("/tokens/plc_line3")
        assert gone.status_code == 404 and "no API token 'plc_line3'" in gone.json()["error"]["message"]
    done = [(a["what"], a["target"], a["result"]) for a in _actions(live, "admin")[-3:]]
    assert done == [
        ("add_api_token", "plc_line3", "success"),
        ("remove_api_token", "plc_line3", "success"),
        ("remove_api_token", "plc_line3", "refused"),
    ]


def test_only_an_admin_on_root_manages_tokens_and_bad_requests_say_what_is_wrong(live: Live) -> None:
    with live.client("operator") as operator:
        refused = operator.post("/tokens", json={"name": "mine", "grants": {"**": "admin"}})
        assert refused.status_code == 403 and "needs admin on root" in refused.json()["error"]["message"]
        assert operator.get("/tokens").status_code == 403
        assert operator.delete("/tokens/anything").status_code == 403
    with live.client("admin") as admin:
        assert admin.post("/tokens", json={"name": "x", "grants": {}}).status_code == 400
        assert (
            admin.post("/tokens", json={"name": "bad name", "grants": {"**": "observer"}}).status_code == 400
        )
        lifetime = admin.post("/tokens", json={"name": "x", "grants": {"**": "observer"}, "lifetime": "soon"})
        assert lifetime.status_code == 400 and "lifetime" in lifetime.json()["error"]["message"]
        level = admin.post("/tokens", json={"name": "x", "grants": {"**": "boss"}})
        assert level.status_code == 400
        made = admin.post("/tokens", json={"name": "temp", "grants": {"root": "observer"}, "lifetime": "90d"})
        assert made.status_code == 201
        assert made.json()["api_token"]["grants"] == {"root": "observer"}
        assert made.json()["api_token"]["expires"] is not None
        assert admin.delete("/tokens/temp").status_code == 200  # the server is shared: leave nothing
