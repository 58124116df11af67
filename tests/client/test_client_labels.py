"""Value labels on the command line against a real server: ``linkserver fire`` takes a coded
field's label (``cause=cable``) and sends the stored value; a word that is neither a value nor
a label is refused listing the labels; ``history`` and ``alarms`` filters take labels."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from linkserver.client.cli import main
from linkserver.history.base import HistoryQuery
from linkserver.loading import load_contexts
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.testing import RunningServer

NET = """
templates:
  switch:
    events:
      linkDown:
        level: WARNING
        persistent: true
        reduction_key: "{context}:{name}:{data.ifIndex}"
        format:
          fields:
            - {name: ifIndex, type: integer}
            - {name: cause, type: integer, labels: {1: cable, 2: power, 3: "7"}}
            - {name: status, type: string, default: "2", labels: {"1": up, "2": down}}
contexts:
  net:
    templates: [standard]
    child_templates: [standard, switch]
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("labels_cli")
    (base / "net.yaml").write_text(NET)
    catalog = load_contexts([SHIPPED_CONTEXTS, base / "net.yaml"])
    with RunningServer(base / "data", catalog=catalog) as server:
        server.server.engine.add_context("net.sw1")
        server.server.engine.add_context("devices.plc7")
        yield server


def cli(capsys: pytest.CaptureFixture[str], live: RunningServer, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*argv, "--url", live.url, "--token", live.token("admin")])
    out, err = capsys.readouterr()
    return code, out, err


def fire(capsys: pytest.CaptureFixture[str], live: RunningServer, *values: str) -> dict:
    code, out, err = cli(capsys, live, "fire", "net.sw1", "linkDown", *values, "--durable", "--json")
    assert (code, err) == (0, "")
    return dict(json.loads(out))


def test_fire_takes_a_coded_field_by_its_label_and_sends_its_value(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    event = fire(capsys, live, "ifIndex=3", "cause=cable", "status=up")
    assert event["data"] == [{"ifIndex": 3, "cause": 1, "status": "1"}]
    assert event["labels"] == [{"cause": "cable", "status": "up"}]
    assert live.server.history.get(event["id"]).record == {"ifIndex": 3, "cause": 1, "status": "1"}
    event = fire(capsys, live, "ifIndex=3", "cause=2", "status=2")  # the stored values still do
    assert event["data"] == [{"ifIndex": 3, "cause": 2, "status": "2"}]


def test_a_number_is_a_number_on_an_integer_field_and_a_label_wins_on_a_string_field(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # 7 is the label of 3 and a valid integer: the number; "up" is a label and a valid string: the label
    assert fire(capsys, live, "ifIndex=1", "cause=7", "status=up")["data"] == [
        {"ifIndex": 1, "cause": 7, "status": "1"}
    ]
    # text that is no label of a string field without allowed values is that text
    assert fire(capsys, live, "ifIndex=1", "cause=3", "status=sideways")["data"][0]["status"] == "sideways"


@pytest.mark.parametrize(
    ("path", "event", "item", "message"),
    [
        (
            "net.sw1",
            "linkDown",
            "cause=cabel",
            "cause='cabel' is not a whole number or a label: 1 (cable), 2 (power), 3 (7); "
            "did you mean 'cable'?",
        ),
        (
            "devices.plc7",
            "disconnected",
            "reason=timout",
            "reason='timout' is not one of the allowed values or a label: stopped (stopped by the "
            "controller), timeout (the device stopped answering), refused (the device refused the "
            "connection), lost (the connection was lost), error (the controller failed); "
            "did you mean 'timeout'?",
        ),
    ],
)
def test_a_word_that_is_neither_a_value_nor_a_label_is_refused_listing_the_labels(
    live: RunningServer, capsys: pytest.CaptureFixture[str], path: str, event: str, item: str, message: str
) -> None:
    before = live.server.history.count(HistoryQuery())
    code, out, err = cli(capsys, live, "fire", path, event, item, "--durable")
    assert (code, out, err) == (2, "", f"linkserver: {message}\n")
    assert live.server.history.count(HistoryQuery()) == before


def test_a_shipped_string_code_is_given_by_its_label(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(
        capsys, live, "fire", "devices.plc7", "disconnected", "reason=the device stopped answering", "--json"
    )
    assert code == 0 and json.loads(out)["data"] == [{"reason": "timeout"}]


def test_data_json_is_sent_as_given_and_the_api_takes_stored_values_only(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.dumps({"ifIndex": 3, "cause": "cable"})
    code, out, err = cli(capsys, live, "fire", "net.sw1", "linkDown", "--data", data)
    assert code == 1 and out == "" and "cause" in err


def test_history_and_alarm_filters_take_a_label_or_the_value(
    live: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    live.server.engine.add_context("net.sw2")
    cable = live.server.fire("net.sw2", "linkDown", {"ifIndex": 5, "cause": 1}, durable=True)
    live.server.fire("net.sw2", "linkDown", {"ifIndex": 6, "cause": 2}, durable=True)
    for label in ('"cable"', "1"):
        code, out, err = cli(
            capsys, live, "history", "--mask", "net.sw2", "--filter", f"data.cause == {label}", "--json"
        )
        assert (code, err) == (0, "")
        assert [event["id"] for event in json.loads(out)["events"]] == [cable.id]
        code, out, err = cli(
            capsys,
            live,
            "alarms",
            "list",
            "--mask",
            "net.sw2",
            "--filter",
            f"data.cause == {label}",
            "--json",
        )
        assert (code, err) == (0, "")
        assert [alarm["key"] for alarm in json.loads(out)["alarms"]] == ["net.sw2:linkDown:5"]
    only = ("history", "--mask", "net.sw2", "--event", "linkDown", "--filter")
    code, _, err = cli(capsys, live, *only, 'data.cause == "cabel"')
    assert code == 1 and "cannot be compared with the string 'cabel' (its labels: 7, cable, power)" in err
    code, _, err = cli(capsys, live, *only, "data.cause == cable")  # text is quoted in a filter
    assert code == 1 and 'write text in quotes: "cable"' in err
