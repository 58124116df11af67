"""Addresses, credentials, request bodies and answer parsing of the client (no server)."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime

import pytest

from linkserver.client import transport
from linkserver.client.errors import ProtocolError
from linkserver.client.transport import (
    Credentials,
    batch_items,
    endpoint,
    fire_item,
    history_params,
    is_local,
    parse_page,
    parse_results,
    resolve_credentials,
    tls_verify,
)
from linkserver.core.errors import ContextNotFound, DataTableError
from linkserver.core.events import Event
from linkserver.core.levels import Level

EVENT = {
    "id": 42,
    "context": "devices.plc7",
    "name": "measurement",
    "level": "NOTICE",
    "created": "2026-01-01T00:00:00+00:00",
    "expires": "2026-01-02T00:00:00+00:00",
    "author": "admin",
    "group": "measurements",
    "data": [{"quantity": "t", "value": 1.5, "unit": ""}],
    "acknowledgements": [],
}


@pytest.mark.parametrize(
    ("url", "base", "ws"),
    [
        ("127.0.0.1:7341", "http://127.0.0.1:7341", "ws://127.0.0.1:7341/api/v1/ws"),
        ("http://localhost:80/", "http://localhost:80", "ws://localhost:80/api/v1/ws"),
        ("https://plant.example/api/v1", "https://plant.example", "wss://plant.example/api/v1/ws"),
        ("ws://[::1]:7341", "http://[::1]:7341", "ws://[::1]:7341/api/v1/ws"),
    ],
)
def test_endpoint_normalises_addresses(url: str, base: str, ws: str) -> None:
    where = endpoint(url)
    assert where.base == base
    assert where.api == base + "/api/v1"
    assert where.websocket == ws


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://host:notaport"])
def test_endpoint_rejects_what_is_not_an_address(url: str) -> None:
    with pytest.raises(ValueError, match="not a LinkServer address"):
        endpoint(url)


def test_is_local_knows_loopback_only() -> None:
    assert is_local("http://127.0.0.1:7341")
    assert is_local("http://127.3.4.5:1")
    assert is_local("http://localhost:7341")
    assert is_local("http://[::1]:7341")
    assert not is_local("http://10.0.0.1:7341")
    assert not is_local("http://plant.example:7341")


def test_a_plain_http_client_loads_no_ca_bundle_and_trusts_no_certificate() -> None:
    """Over http the TLS context is never used (so the CA bundle is not loaded); were it
    used, every certificate would fail verification rather than pass unchecked."""
    context = tls_verify(endpoint("http://127.0.0.1:7341"))
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert tls_verify(endpoint("https://linkserver.example:7341")) is True  # httpx's default bundle


def test_explicit_credentials_win_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINKSERVER_TOKEN", "from-env")
    local = endpoint("127.0.0.1:1")
    assert resolve_credentials(local, None, None, "tok").token == "tok"
    assert resolve_credentials(local, "bob", "pw", None) == Credentials(user="bob", password="pw")
    assert resolve_credentials(local, None, None, None).token == "from-env"


def test_local_server_uses_the_admin_credentials_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINKSERVER_TOKEN", raising=False)
    path = tmp_path / "admin.credentials"
    path.write_text(json.dumps({"user": "admin", "password": "s3cret", "url": "http://127.0.0.1:9999"}))
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(path))
    found = resolve_credentials(endpoint("http://127.0.0.1:9999"), None, None, None)
    assert (found.user, found.password, found.source) == ("admin", "s3cret", str(path))
    remote = resolve_credentials(endpoint("http://plant.example:9999"), None, None, None)
    assert remote.user is None and remote.token is None
    monkeypatch.delenv("LINKSERVER_URL", raising=False)
    assert transport.default_url() == "http://127.0.0.1:9999"


def test_missing_credentials_file_means_no_credentials(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINKSERVER_TOKEN", raising=False)
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(tmp_path / "absent"))
    assert resolve_credentials(endpoint("127.0.0.1:1"), None, None, None) == Credentials(source="none")


def test_fire_item_names_the_level_and_lists_tuples() -> None:
    item = fire_item("devices.a", "error", ({"code": "E1"},), level=4)
    assert item == {"context": "devices.a", "event": "error", "data": [{"code": "E1"}], "level": "ERROR"}
    assert fire_item("", "serverStarted") == {"context": "", "event": "serverStarted"}


def test_batch_items_take_dicts_and_tuples_and_reject_others() -> None:
    items = batch_items([{"context": "a", "event": "x", "level": "warning"}, ("b", "y", {"v": 1})])
    assert items == [
        {"context": "a", "event": "x", "level": "WARNING"},
        {"context": "b", "event": "y", "data": {"v": 1}},
    ]
    with pytest.raises(ValueError, match="context and event"):
        batch_items([{"context": "a", "name": "x"}])
    with pytest.raises(ValueError, match="a dict or"):
        batch_items(["a.x"])


def test_history_params_repeat_masks_and_spell_booleans() -> None:
    params = history_params(
        mask=["devices.**", "users.*"],
        event="login",
        min_level=Level.WARNING,
        since=datetime(2026, 1, 1, tzinfo=UTC),
        acknowledged=False,
        requires_acknowledgement=True,
        limit=5,
        cursor="abc",
        count=True,
    )
    assert params == [
        ("mask", "devices.**"),
        ("mask", "users.*"),
        ("event", "login"),
        ("min_level", "WARNING"),
        ("since", "2026-01-01T00:00:00+00:00"),
        ("acknowledged", "false"),
        ("requires_acknowledgement", "true"),
        ("limit", "5"),
        ("cursor", "abc"),
        ("count", "true"),
    ]
    assert history_params() == [("limit", "100")]


def test_parse_page_gives_events_cursor_and_count() -> None:
    page = parse_page({"events": [EVENT], "next_cursor": "n1", "count": 7})
    assert [e.id for e in page] == [42] and len(page) == 1
    assert page.next_cursor == "n1" and page.count == 7
    assert isinstance(page.events[0], Event) and page.events[0].record["value"] == 1.5


def test_parse_results_keeps_order_and_turns_errors_into_exceptions() -> None:
    missing = {"error": {"type": "ContextNotFound", "message": "context 'x' does not exist"}}
    results = parse_results([{"event": EVENT}, missing], "event")
    assert results[0].id == 42
    assert isinstance(results[1], ContextNotFound) and "'x'" in str(results[1])
    bad = {"error": {"type": "DataTableError", "message": "bad", "fields": ["value"]}}
    ids = parse_results([{"id": 5}, bad], "id")
    assert ids[0] == 5 and isinstance(ids[1], DataTableError)


def test_malformed_answers_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError, match="lacks 'events'"):
        parse_page({"items": []})
    with pytest.raises(ProtocolError, match="cannot read"):
        parse_page({"events": [{"id": 1}]})
    with pytest.raises(ProtocolError, match="must be a list"):
        parse_results({"id": 1}, "id")
