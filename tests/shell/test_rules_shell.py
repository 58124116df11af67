"""The shell's rules command on a real server with rules: the list with each rule's state,
one rule in detail, and the dry run."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from shell_helpers import ShellDriver, TextConsole

from linkserver.client import Client
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.testing import RunningServer

RULES = """
rules:
  - {name: burst, kind: count, mask: "devices.*", event: error, count: 2, within: 1h}
  - {name: quiet, kind: absence, mask: "devices.*", event: measurement, within: 1h}
"""


@pytest.fixture
def ruled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShellDriver]:
    config = tmp_path / "linkserver.yaml"
    config.write_text(
        f"server:\n  data_dir: {tmp_path / 'data'}\n  contexts: [{SHIPPED_CONTEXTS}]\n"
        "controllers: []\n" + textwrap.dedent(RULES),
        encoding="utf-8",
    )
    server = RunningServer(config_path=config)
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(server.credentials_path))
    try:
        with Client(server.url) as client:
            yield ShellDriver(client, TextConsole())
    finally:
        server.stop()


def test_rules_lists_each_rule_with_its_state_and_tests_one(ruled: ShellDriver) -> None:
    ruled.client.add_context("devices.d1")
    for _ in range(2):
        ruled.client.fire("devices.d1", "error", {"code": "E1", "message": "bad"}, durable=True)
    listing = ruled.run("rules")
    burst = next(line for line in listing.splitlines() if line.startswith("burst"))
    assert "alerts.burst" in burst and "open: devices.d1" in burst and "2 x error in devices.*" in burst
    assert "2 rule(s)" in listing
    detail = ruled.run("rules burst")
    assert detail.startswith("burst (count): 2 x error in devices.* within 1h per context\n")
    assert "  open  devices.d1  since" in detail
    assert "watching 1 key for silence" in ruled.run("rules quiet")  # devices.d1, since it was added
    tested = ruled.run("rules burst --test 7d")
    assert "rule burst: 2 stored events" in tested and "(nothing was fired)" in tested
    assert "2 error events within 1h in devices.d1" in tested
