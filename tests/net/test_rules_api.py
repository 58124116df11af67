"""The /rules operations over HTTP: answers fit their declared shapes, rules and replayed events
are limited to what the caller may see, bad parameters are 400, unknown rules 404."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.net.auth import hash_password
from linkserver.testing import RunningServer, password_of
from linkserver.wire import rule_shapes

RULES = """
rules:
  - {name: burst, kind: count, mask: "devices.*", event: error, count: 2, within: 1h}
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("rules-api")
    users = {"devices_only": {"devices.**": "observer"}, "alerts_only": {"alerts.**": "observer"}}
    lines = ["users:", "  admin: {grants: {'**': admin}}"]
    for name, grants in users.items():
        hashed = hash_password(password_of(name), n=2**10)
        lines.append(f"  {name}: {{password_hash: '{hashed}', grants: {grants}}}")
    config = folder / "linkserver.yaml"
    config.write_text(
        f"server:\n  data_dir: {folder / 'data'}\n  contexts: [{SHIPPED_CONTEXTS}]\n"
        "controllers: []\n" + "\n".join(lines) + "\n" + textwrap.dedent(RULES),
        encoding="utf-8",
    )
    server = RunningServer(config_path=config)
    server.server.engine.add_context("devices.d1")
    for _ in range(2):
        server.server.fire("devices.d1", "error", {"code": "E1", "message": "bad"}, durable=True)
    try:
        yield server
    finally:
        server.stop()


def test_the_answers_fit_their_shapes(live: RunningServer) -> None:
    with live.http("admin") as http:
        listing = http.get("/rules")
        assert listing.status_code == 200
        (rule,) = msgspec.convert(listing.json(), rule_shapes.RulesAnswer).rules
        assert (rule.name, rule.kind, rule.enabled, rule.alert, rule.fired) == (
            "burst",
            "count",
            True,
            "alerts.burst",
            1,
        )
        one = msgspec.convert(http.get("/rules/burst").json(), rule_shapes.RuleAnswer).rule
        assert one.state["open"]["devices.d1"]["alert_id"] is not None
        tested = http.get("/rules/burst/test", params={"since": "1h"})
        assert tested.status_code == 200
        result = msgspec.convert(tested.json(), rule_shapes.RuleTestAnswer, strict=False)
        assert result.events == 2 and [(f.event, f.key) for f in result.fired] == [("alert", "devices.d1")]
    document = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    assert {"/api/v1/rules", "/api/v1/rules/{name}", "/api/v1/rules/{name}/test"} <= set(document["paths"])


def test_bad_parameters_and_unknown_rules(live: RunningServer) -> None:
    with live.http("admin") as http:
        soon = http.get("/rules/burst/test", params={"since": "soon"})
        assert soon.status_code == 400 and "a duration such as 7d" in soon.json()["error"]["message"]
        naive = http.get("/rules/burst/test", params={"since": "2026-05-01T08:00:00"})
        assert naive.status_code == 400 and "with a timezone" in naive.json()["error"]["message"]
        assert http.get("/rules/burst/test", params={"since": "1h", "extra": "x"}).status_code == 400
        missing = http.get("/rules/nope")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "UnknownRule"
        assert http.get("/rules/nope/test").status_code == 404


def test_a_caller_sees_only_rules_of_alert_contexts_it_may_observe_and_events_it_may_receive(
    live: RunningServer,
) -> None:
    with live.http("devices_only") as http:
        assert http.get("/rules").json() == {"rules": []}
        hidden = http.get("/rules/burst")
        assert hidden.status_code == 404 and "rules: none are configured" in hidden.json()["error"]["message"]
        assert http.get("/rules/burst/test").status_code == 404
    with live.http("alerts_only") as http:
        assert [r["name"] for r in http.get("/rules").json()["rules"]] == ["burst"]
        tested = http.get("/rules/burst/test", params={"since": "1h"}).json()
        assert tested["events"] == 0 and tested["fired"] == []  # it may not receive the devices' errors
