"""Value labels in every place that takes a filter expression (core.filters.labels.bind_filter):
``data.status == "down"`` where down is stored as 2 selects the same events in a subscription, a
history query, the alarm list's filter, a bridge's ``select``, a state machine's guard and an alert
rule's filter, open and close conditions (live and in the dry run), in one running server.
``linkserver check`` reports a word none of the field's labels at its file:line in each of them."""

from __future__ import annotations

import re
import textwrap
import uuid
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from linkserver import CapturingListener, LinkServer
from linkserver.bridges.memory import MemoryBroker
from linkserver.cli import main
from linkserver.core.errors import FilterError
from linkserver.core.filters import parse_filter
from linkserver.core.rules import Rule, RuleKind
from linkserver.history.alarms import AlarmQuery
from linkserver.history.base import HistoryQuery
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.server.rules import RuleHost

PORTS = """
formats:
  portChange:
    fields:
      - {name: old, type: string}
      - {name: new, type: string}
      - {name: cause, type: string, nullable: true, default: null}
      - {name: by, type: string, nullable: true, default: null}
state_machines:
  port:
    initial: unknown
    states: [unknown, up, down]
    transitions:
      - {from: [unknown, up], event: linkState, to: down, guard: 'data.status == "down"'}
      - {from: [unknown, down], event: linkState, to: up, guard: 'data.status in ["up"]'}
templates:
  port:
    state_machine: port
    events:
      linkState:
        level: WARNING
        persistent: true
        reduction_key: "{context}:{name}"
        format:
          fields:
            - {name: status, type: integer, labels: {1: up, 2: down}}
      stateChanged: {persistent: true, format: portChange}
contexts:
  ports:
    templates: [standard]
    child_templates: [standard, port]
"""

RULES = """
rules:
  - {name: downs, kind: count, mask: "ports.*", event: linkState, filter: 'data.status == "down"',
     count: 2, within: 1h}
  - {name: flap, kind: threshold, mask: "ports.*", event: linkState, open: 'data.status == "down"',
     close: 'data.status != "down"'}
"""


def config(tmp_path: Path, broker: str, *, select: str = 'data.status == "down"', rules: str = RULES) -> Path:
    (tmp_path / "ports.yaml").write_text(PORTS)
    path = tmp_path / "linkserver.yaml"
    path.write_text(
        f"server:\n  data_dir: {tmp_path / 'data'}\n"
        f"  contexts: [{SHIPPED_CONTEXTS}, {tmp_path / 'ports.yaml'}]\n"
        f"history:\n  database_url: 'sqlite:///{tmp_path / 'h.sqlite3'}'\n"
        "controllers: []\n"
        "bridges:\n"
        f"  - {{name: out, type: memory, broker: {broker},\n"
        f"     select: [{{mask: 'ports.*', event: linkState, filter: '{select}'}}]}}\n"
        + textwrap.dedent(rules),
        encoding="utf-8",
    )
    return path


DOWN, UP = {"status": 2}, {"status": 1}


def test_a_label_selects_the_same_events_everywhere_a_filter_is_taken(tmp_path: Path) -> None:
    broker = f"labels_{uuid.uuid4().hex[:8]}"
    memory = MemoryBroker.named(broker)
    with LinkServer.from_config_file(config(tmp_path, broker)) as server:
        server.engine.add_context("ports.p1")
        listener = CapturingListener()
        server.listen("ports.*", "linkState", listener, filter='data.status == "down"')
        fired = [server.fire("ports.p1", "linkState", data, durable=True) for data in (UP, DOWN, UP, DOWN)]
        downs = [fired[1].id, fired[3].id]

        assert [e.id for e in listener.events] == downs  # a subscription
        history = server.access.query(
            HistoryQuery(masks=("ports.*",), filter=parse_filter('data.status == "down"')), None
        )
        assert sorted(e.id for e in history.events) == downs  # a history query
        (alarm,) = server.alarms.query(AlarmQuery(filter=parse_filter('data.status == "down"')), None).alarms
        assert alarm.event_id == fired[3].id  # the alarm list (its last event's data)
        assert server.alarms.query(AlarmQuery(filter=parse_filter('data.status == "up"')), None).alarms == ()

        messages = memory.wait_for(2)  # a bridge's select
        assert [m.message_id for m in messages] == [str(i) for i in downs]

        assert server.resources.state("ports.p1") == "down"  # a state machine's guard
        server.fire("ports.p1", "linkState", UP, durable=True)
        assert server.resources.state("ports.p1") == "up"

        status = {rule["name"]: rule for rule in server.rules.status()}
        assert list(status["downs"]["state"]["open"]) == ["ports.p1"]  # both downs counted, no up
        assert status["flap"]["state"]["open"] == {}  # opened by each down, closed by each later up
        assert status["flap"]["fired"] == 4 and status["downs"]["fired"] == 1

        tested = server.rules.test("downs", since=timedelta(hours=1))  # the dry run
        assert [f["key"] for f in tested["fired"] if f["event"] == "alert"] == ["ports.p1"]
        flaps = server.rules.test("flap", since=timedelta(hours=1))["fired"]
        assert [f["event"] for f in flaps] == ["alert", "alertCleared", "alert", "alertCleared"]


def test_a_rule_built_in_python_has_its_labels_resolved_or_is_refused(tmp_path: Path) -> None:
    broker = f"labels_{uuid.uuid4().hex[:8]}"
    with LinkServer.from_config_file(config(tmp_path, broker, rules="")) as server:
        rule = Rule(name="r", kind=RuleKind.COUNT, mask="ports.*", event="linkState", count=1,
                    within=timedelta(hours=1), filter=parse_filter('data.status == "down"'))  # fmt: skip
        (bound,) = RuleHost(server.engine, server.history, [(rule, True)]).rules
        assert bound.filter is not None and bound.filter.text == rule.filter.text  # type: ignore[union-attr]
        assert bound.filter.ast != rule.filter.ast  # type: ignore[union-attr]  # "down" became 2 as well
        wrong = attrs.evolve(rule, filter=parse_filter('data.status == "dwon"'))
        with pytest.raises(
            FilterError, match=r"cannot be compared with the string 'dwon' \(its labels: down, up\)"
        ):
            RuleHost(server.engine, server.history, [(wrong, True)])


def test_check_reports_an_unknown_label_at_its_line_in_a_select_a_rule_and_a_guard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = """
    rules:
      - {name: downs, kind: count, mask: "ports.*", event: linkState, filter: 'data.status == "dwon"',
         count: 2, within: 1h}
    """
    path = config(tmp_path, "unused", select='data.status in ["up", "donw"]', rules=rules)
    (tmp_path / "ports.yaml").write_text(
        PORTS.replace("guard: 'data.status == \"down\"'", "guard: 'data.status == \"off\"'")
    )
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    err = captured.out + captured.err
    labels = r"\(its labels: down, up\)"

    assert re.search(
        rf"linkserver\.yaml:9:\d+: 'filter' of select entry 1 of bridge 'out' cannot match 'linkState' under "
        rf"'ports\.\*': .*cannot be compared with the string 'donw' {labels}",
        err,
    ), err
    assert re.search(rf"linkserver\.yaml:12:\d+: 'filter' of rule 'downs' .*'dwon' {labels}", err), err
    assert re.search(
        rf"ports\.yaml:14:\d+: state machine 'port' \(.*\): the guard 'data\.status == \"off\"' "
        rf"cannot match: .*the string 'off' {labels}",
        err,
    ), err
