"""Alert rules through the network API, the client and the command line, on a real server:
``linkserver rules list`` shows each rule and its state, ``rules test`` dry-runs one over history."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_client_user_cli import cli

from linkserver.client import Client
from linkserver.client.rule_commands import summary
from linkserver.core.errors import BadRequest, UnknownRule
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.testing import RunningServer

RULES = """
rules:
  - {name: burst, kind: count, mask: "devices.*", event: error, count: 2, within: 1h}
  - {name: tuning, kind: count, mask: "devices.*", event: error, count: 3, within: 1h, enabled: false}
  - name: paging
    kind: escalation
    source: alarms
    mask: "devices.*"
    event: error
    steps: [{after: 1h}]
"""


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    for name in ("LINKSERVER_URL", "LINKSERVER_TOKEN", "LINKSERVER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "linkserver.yaml"
    config.write_text(
        f"server:\n  data_dir: {tmp_path / 'data'}\n  contexts: [{SHIPPED_CONTEXTS}]\n"
        "controllers: []\n" + textwrap.dedent(RULES),
        encoding="utf-8",
    )
    server = RunningServer(config_path=config)
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(server.credentials_path))
    try:
        yield server
    finally:
        server.stop()


def test_rules_list_and_a_dry_run_through_the_client_and_the_command_line(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client(live.url) as client:
        client.add_context("devices.d1")
        for _ in range(3):
            client.fire("devices.d1", "error", {"code": "E1", "message": "bad"}, durable=True)
        rules: list[dict[str, Any]] = client.rules()
        assert [(r["name"], r["enabled"], r["fired"]) for r in rules] == [
            ("burst", True, 1),
            ("tuning", False, 0),
            ("paging", True, 0),
        ]
        assert rules[0]["state"]["open"]["devices.d1"]["alert_id"] is not None
        assert client.rule("tuning")["description"] == "3 x error in devices.* within 1h per context"
        result = client.test_rule("tuning", since="1h")
        assert result["events"] == 3
        assert [(f["event"], f["key"]) for f in result["fired"]] == [("alert", "devices.d1")]
        with pytest.raises(UnknownRule, match="no rule named 'nope' \\(rules: burst, paging, tuning\\)"):
            client.test_rule("nope")
    code, out, _ = cli(capsys, "rules", "list", "--url", live.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["rule", "kind", "fires", "in", "fired", "now", "watches"]
    assert "burst" in lines[1] and "alerts.burst" in lines[1] and "open: devices.d1" in lines[1]
    assert "count (disabled)" in lines[2]
    code, out, _ = cli(capsys, "rules", "test", "tuning", "--since", "7d", "--url", live.url)
    assert code == 0
    assert "rule tuning: 3 stored events" in out and "it would have fired 1:" in out
    assert "alert" in out and "3 error events within 1h in devices.d1" in out
    for since, until in (("yesterday", "now"), ("2h", "now"), ("2020-01-01T00:00Z", "now")):
        code, out, err = cli(
            capsys, "rules", "test", "tuning", "--since", since, "--until", until, "--url", live.url
        )
        assert (code, err) == (0, ""), (since, until)
        assert "rule tuning: 3 stored events" in out and "it would have fired 1:" in out, (since, until)
    with pytest.raises(SystemExit) as exited:
        cli(capsys, "rules", "test", "tuning", "--since", "soon", "--url", live.url)
    assert exited.value.code == 2 and "'soon' is not a time" in capsys.readouterr().err
    code, out, _ = cli(capsys, "rules", "test", "tuning", "--since", "7d", "--json", "--url", live.url)
    assert json.loads(out)["fired"][0]["data"]["key"] == "devices.d1"
    code, _, err = cli(capsys, "rules", "test", "nope", "--url", live.url)
    assert code != 0 and "no rule named 'nope'" in err
    with Client(live.url) as client:  # the dry runs fired nothing
        assert [r["fired"] for r in client.rules()] == [1, 0, 0]


def test_a_dry_run_of_an_alarm_escalation_says_why_it_cannot_be_one(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The alarm list keeps no history to replay: a clear refusal (400), not an internal error."""
    with Client(live.url) as client, pytest.raises(BadRequest, match="escalates alarms") as raised:
        client.test_rule("paging", since="1h")
    assert raised.value.status == 400
    code, _, err = cli(capsys, "rules", "test", "paging", "--since", "7d", "--url", live.url)
    assert code != 0 and "rule 'paging' escalates alarms" in err and "see its log" not in err


def test_the_state_summary_counts_in_words() -> None:
    state = {
        "open": {"devices.d1": {}},
        "counting": {"devices.d2": 1},
        "watching": 1,
        "escalating": {"1": 0, "2": 0},
    }
    assert summary(state) == "open: devices.d1; counting 1 key; watching 1 key; escalating 2 events"
    assert summary({"counting": {"a": 1, "b": 2}, "watching": 0}) == "counting 2 keys"
