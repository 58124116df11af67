"""What the server sends for the console (no browser): the page and its files from the
package, with a policy that lets the page load nothing from elsewhere; the WebSocket token
in Sec-WebSocket-Protocol instead of the URL."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from linkserver.testing import RunningServer
from linkserver.web.app import STATIC


def test_the_page_and_every_file_it_names_are_served_with_the_console_policy(server: RunningServer) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    for path in sorted(STATIC.iterdir()):
        answer = httpx.get(f"{server.url}/web/{path.name}")
        assert answer.status_code == 200, path.name
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.url + "/web/main.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(server.url + "/web/nothing.js").status_code == 404
    assert (
        httpx.get(server.url + "/api/v1/nothing").json()["error"]["type"] == "NotFound"
    )  # the API's own 404


def test_no_module_reaches_outside_the_server() -> None:
    """Everything ships in the package: no CDN, no absolute URL, every import a local file."""
    for path in STATIC.glob("*.js"):
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text, (
            path
        )
        for line in text.splitlines():
            if line.startswith("import "):
                target = line.rsplit('"', 2)[-2]
                assert target.startswith("./") and (STATIC / target[2:]).exists(), (path.name, target)


def test_a_websocket_takes_its_token_from_the_subprotocol(server: RunningServer) -> None:
    token = server.token("operator")
    with connect(server.ws_url, subprotocols=["linkserver.v1", f"bearer.{token}"], open_timeout=5) as ws:
        assert ws.subprotocol == "linkserver.v1"
        ws.send(json.dumps({"type": "ping", "ref": 1}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong", "ref": 1}
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws_url, subprotocols=["linkserver.v1", "bearer.wrong"], open_timeout=5)
    assert refused.value.response.status_code == 401
