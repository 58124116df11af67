"""The client commands end to end: fire, history, ack, watch, tree; --json; exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from client_helpers import ROOT, LiveServer

from linkserver.client import Client
from linkserver.client.cli import format_table, main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def plc(client: Client) -> str:
    return client.add_context("devices.plc7", description="PLC 7")


def test_fire_types_values_by_the_definition(
    live: LiveServer, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        capsys,
        "fire",
        plc,
        "measurement",
        "quantity=temperature",
        "value=3.5",
        "unit=degC",
        "--level",
        "warning",
        "--durable",
        "--json",
        "--url",
        live.url,
    )
    assert (code, err) == (0, "")
    event = json.loads(out)
    assert event["data"] == [{"quantity": "temperature", "value": 3.5, "unit": "degC"}]
    assert event["level"] == "WARNING"
    code, out, _ = cli(capsys, "fire", plc, "connected", "address=null", "firmware=1.2", "--url", live.url)
    assert code == 0 and out.startswith(f"fired {plc}/connected id ")
    with Client(live.url) as client:
        connected = client.history(mask=plc, event="connected").events[0]
    assert connected.record == {"address": None, "firmware": "1.2"}


def test_fire_takes_a_whole_table_as_json(
    live: LiveServer, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = [{"quantity": "a", "value": 1}, {"quantity": "b", "value": 2}]
    code, out, _ = cli(
        capsys, "fire", plc, "measurement", "--data", json.dumps(table), "--json", "--url", live.url
    )
    assert code == 0 and [r["quantity"] for r in json.loads(out)["data"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["value=warm"], 2, "value='warm' is not a number"),
        (["value"], 2, "expected key=value"),
        (["quantity=t", "value=1", "--data", "[]"], 2, "not both"),
        (["quantity=t", "value=1", "colour=red"], 1, "colour"),
        (["quantity=t", "value=1e400"], 2, "value='1e400' is not a finite number"),
        (["quantity=t", "value=nan"], 2, "value='nan' is not a finite number"),
        (["quantity=t", "value=-inf"], 2, "is not a finite number"),
        (["quantity=\udcff", "value=1"], 2, "'quantity=\\udcff' is not text"),
        (["q\udcffx=t", "value=1"], 2, "is not text"),
        (["--data", '{"quantity": "t", "value": NaN}'], 2, "NaN is not a JSON number"),
        (["--data", '{"quantity": "t", "value": 1e400}'], 2, "1e400 is not a finite number"),
        (["--data", '{"quantity": "\\ud800", "value": 1}'], 2, "lone surrogate"),
        (["--level", "\udcff"], 2, "level '\\udcff' is not text"),
    ],
)
def test_fire_errors_have_one_line_and_an_exit_code(
    live: LiveServer, plc: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    result, out, err = cli(capsys, "fire", plc, "measurement", *args, "--url", live.url)
    assert result == code and out == ""
    assert err.startswith("linkserver: ") and message in err and err.count("\n") == 1


def test_fire_in_an_unknown_context_exits_1(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "fire", "devices.nope", "measurement", "value=1", "--url", live.url)
    assert code == 1 and "context 'devices.nope' does not exist" in err


def test_history_json_and_table(
    live: LiveServer, client: Client, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fired = client.fire_batch([(plc, "measurement", [{"quantity": "t", "value": i}]) for i in range(3)], True)
    code, out, _ = cli(
        capsys,
        "history",
        "--mask",
        "devices.**",
        "--event",
        "measurement",
        "--limit",
        "2",
        "--json",
        "--url",
        live.url,
    )
    page = json.loads(out)
    assert (
        code == 0 and [e["id"] for e in page["events"]] == [fired[2].id, fired[1].id] and page["next_cursor"]
    )
    code, out, err = cli(
        capsys, "history", "--mask", plc, "--filter", "data.value >= 1", "--oldest-first", "--url", live.url
    )
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "ID",
        "CREATED",
        "LEVEL",
        "CONTEXT",
        "EVENT",
        "ACK",
        "MESSAGE",
        "DATA",
    ]
    assert [line.split()[0] for line in lines[1:]] == [str(fired[1].id), str(fired[2].id)]
    assert len({line.index("NOTICE") for line in lines[1:]}) == 1  # aligned
    code, _, err = cli(capsys, "history", "--filter", "level >>", "--url", live.url)
    assert code == 1 and "linkserver: " in err
    code, out, err = cli(capsys, "history", "--mask", plc, "--filter", "data.valu > 3", "--url", live.url)
    assert (code, out) == (1, "") and "did you mean 'data.value'" in err and err.count("\n") == 1


def test_history_since_and_until_take_durations_dates_and_words(
    live: LiveServer, client: Client, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fired = client.fire(plc, "measurement", [{"quantity": "t", "value": 1}], durable=True)
    window = ("--mask", plc, "--json", "--url", live.url)
    for since, until in (("1h", "now"), ("today", "1h"), ("yesterday", "2099-01-01")):
        code, out, err = cli(capsys, "history", "--since", since, "--until", until, *window)
        ids = [e["id"] for e in json.loads(out)["events"]]
        assert (code, err) == (0, "") and ids == ([] if until == "1h" else [fired.id]), (since, until)
    with pytest.raises(SystemExit) as exited:
        cli(capsys, "history", "--since", "soon", *window)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "argument --since: 'soon' is not a time: write 2026-05-01T12:00, 2026-05-01, 1h (ago)" in err


def test_ack_then_history_of_unacknowledged(
    live: LiveServer, client: Client, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    event = client.fire(plc, "error", {"code": "E1", "message": "hot"}, durable=True)
    code, out, _ = cli(capsys, "ack", str(event.id), "fan", "replaced", "--url", live.url)
    assert (code, out.strip()) == (0, f"acknowledged event {event.id} (1 acknowledgement)")
    code, out, _ = cli(capsys, "ack", str(event.id), "checked again", "--json", "--url", live.url)
    assert [a["text"] for a in json.loads(out)["acknowledgements"]] == ["fan replaced", "checked again"]
    code, out, _ = cli(capsys, "history", "--mask", plc, "--unacknowledged", "--json", "--url", live.url)
    assert json.loads(out)["events"] == []
    code, _, err = cli(capsys, "ack", "12345", "nothing", "--url", live.url)
    assert code == 1 and "no stored event with id 12345" in err


def test_watch_prints_events_until_the_count(
    live: LiveServer, client: Client, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(live.server.engine.subscriptions)

    def fire_soon() -> None:
        # Once the command has subscribed: under load its login and subscribe can take seconds.
        deadline = time.monotonic() + 20
        while len(live.server.engine.subscriptions) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        for value in (1, 2, 3):
            client.fire(plc, "measurement", [{"quantity": "t", "value": value}])

    threading.Thread(target=fire_soon).start()
    code, out, _ = cli(
        capsys,
        "watch",
        "devices.*",
        "measurement",
        "--filter",
        "data.value > 1",
        "--count",
        "2",
        "--json",
        "--seconds",
        "20",
        "--url",
        live.url,
    )
    assert code == 0
    assert [json.loads(line)["data"][0]["value"] for line in out.splitlines()] == [2.0, 3.0]
    client.fire(plc, "error", {"code": "E9", "message": "shown as a line"})
    code, out, err = cli(capsys, "watch", "--seconds", "0.3", "--url", live.url)
    assert code == 0 and out == "" and "watching ** * at" in err


def test_tree_table_and_json(live: LiveServer, plc: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "tree", "--url", live.url)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["CONTEXT", "PATH", "DESCRIPTION"]
    assert any(line.startswith("    plc7") and "devices.plc7" in line and "PLC 7" in line for line in lines)
    code, out, _ = cli(capsys, "tree", "devices", "--depth", "1", "--json", "--url", live.url)
    assert json.loads(out)["children"][0]["path"] == plc


def test_unreachable_server_exits_3(unused_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "tree", "--url", unused_url, "--token", "t")
    assert (code, out) == (3, "")
    assert err.strip() == (
        f"linkserver: cannot reach LinkServer at {unused_url} (ConnectError): is it running? "
        "start it with 'linkserver serve'"
    )


def test_wrong_credentials_exit_4(live: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("LINKSERVER_PASSWORD", "wrong")
    code, _, err = cli(capsys, "history", "--user", "admin", "--url", live.url)
    assert code == 4 and err.startswith("linkserver: authentication failed: wrong user name or password")
    code, _, _ = cli(capsys, "watch", "--token", "no.such", "--url", live.url)
    assert code == 4


def test_usage_errors_exit_2_from_a_real_process(unused_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv in (
        ["history", "--limit", "0"],
        ["ack", "not-a-number", "x"],
        ["fire", "devices.x"],
        ["tree", "--url", "ftp://x"],
        ["fire", "devices.x", "measurement", "--data", '{"value": 1e400}', "--url", unused_url],
        ["fire", "devices.x", "measurement", "--data", '{"value": NaN}', "--url", unused_url],
        ["fire", "devices.x", "measurement", b"unit=\xff\xfe", "--url", unused_url],  # not UTF-8
    ):
        done = subprocess.run(
            [sys.executable, "-m", "linkserver.client.cli", *argv],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            env=env,
            cwd=ROOT,
        )
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1], done.stderr


def test_format_table_aligns_all_but_the_last_column() -> None:
    assert format_table(["A", "BB", "C"], [["xxx", "y", "long text"], ["1", "22", ""]]) == (
        "A    BB  C\nxxx  y   long text\n1    22"
    )
    assert format_table(["A", "B"], []) == "A  B\n(none)"


def test_show_gives_the_message_labels_and_instructions(
    live: LiveServer, client: Client, plc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = client.fire(plc, "disconnected", {"reason": "timeout"}, durable=True)
    failed = client.fire(plc, "error", {"code": "E7", "message": "overheated"}, durable=True)
    code, out, _ = cli(capsys, "show", str(gone.id), "--url", live.url)
    assert code == 0
    assert "  disconnected: the device stopped answering" in out.splitlines()
    assert "  reason = the device stopped answering (timeout)" in out.splitlines()
    code, out, _ = cli(capsys, "show", str(failed.id), "--url", live.url)
    assert "  error E7: overheated" in out and "instructions\n  Look the code up" in out
    code, out, _ = cli(capsys, "show", str(failed.id), "--json", "--url", live.url)
    shown = json.loads(out)
    assert shown["event"]["message"] == "error E7: overheated"
    assert shown["instructions"].startswith("Look the code up in the device's manual.")
    code, out, _ = cli(
        capsys,
        "history",
        "--mask",
        plc,
        "--filter",
        'data.reason == "the device stopped answering"',
        "--url",
        live.url,
    )
    assert code == 0 and len(out.splitlines()) == 2 and "reason=the device stopped answering" in out
