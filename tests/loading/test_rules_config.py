"""The rules: section: read like every section, checked against the contexts at file:line."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from linkserver.core.errors import ConfigError
from linkserver.core.rules import RuleKind
from linkserver.loading import check_files, load_all, load_config_text
from linkserver.loading.shipped import SHIPPED_CONTEXTS

AT = "/etc/linkserver/linkserver.yaml:"


def read(text: str):  # noqa: ANN201
    return load_config_text(textwrap.dedent(text), Path("/etc/linkserver/linkserver.yaml"))


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        read(text)
    return str(caught.value)


def test_rules_of_every_kind_are_read_into_core_rules() -> None:
    config = read(
        """
        rules:
          - {name: burst, kind: count, mask: "devices.*", event: error, count: 5, within: 10m}
          - {name: silent, kind: absence, mask: "devices.*", event: measurement, within: 5m, per: rule}
          - name: hot
            kind: threshold
            event: measurement
            mask: "devices.*"
            open: "data.value > 80"
            close: "data.value < 70"
            alert: alerts.temperature
          - name: page
            kind: escalation
            mask: "alerts.**"
            event: alert
            steps:
              - {after: 15m, notify: [oncall]}
              - {after: 1h, level: FATAL, notify: [oncall, manager]}
            repeat: 1h
        """
    )
    burst, silent, hot, page = (c.to_rule() for c in config.sections["rules"])
    assert (burst.kind, burst.count, burst.within, burst.alert) == (
        RuleKind.COUNT,
        5,
        timedelta(minutes=10),
        "alerts.burst",
    )
    assert (silent.per, hot.alert) == ("rule", "alerts.temperature")
    assert hot.open is not None and hot.open.text == "data.value > 80"
    assert [s.after for s in page.steps] == [timedelta(minutes=15), timedelta(hours=1)]
    assert page.repeat == timedelta(hours=1)


def test_impossible_windows_and_missing_keys_are_refused_where_they_are() -> None:
    text = problems(
        """
        rules:
          - {name: a, kind: count, event: error, count: 0, within: 10m}
          - {name: z, kind: count, event: error, count: 2, within: 0s}
          - {name: c, kind: absence, event: error}
          - {name: d, kind: threshold, event: error, open: "level >= ERROR", within: 5m}
          - {name: e, kind: escalation, event: alert, steps: [{after: 1h}, {after: 10m}]}
          - {name: b, kind: absence, event: error, within: 1m}
          - {name: b, kind: absence, event: error, within: 1m}
          - {name: f, kind: often, event: error}
          - {name: g, kind: count, event: error, count: 2, within: 1m, message: "{key} {nope}"}
        """
    )
    assert f"{AT}3:" in text and "'count' in rule 'a' must be an integer >= 1" in text
    assert f"{AT}4:" in text and "positive" in text
    assert f"{AT}5:" in text and "rule 'c' of kind absence needs 'within'" in text
    assert "rule 'd' of kind threshold needs 'close'" in text
    assert "'within' does not apply to rule 'd' of kind threshold" in text
    assert "steps of rule 'e' must come later and later" in text
    assert "step 2 (after 10m) is not after step 1 (after 1h)" in text
    assert f"{AT}9:" in text and "rule 'b' is already defined at line 8" in text
    assert f"{AT}10:" in text and "must be 'count' or 'absence' or 'threshold' or 'escalation'" in text
    assert f"{AT}11:" in text and "names {nope}" in text


def write(tmp_path: Path, rules: str) -> Path:
    config = tmp_path / "linkserver.yaml"
    config.write_text(
        f"server:\n  data_dir: data\n  contexts: [{SHIPPED_CONTEXTS}]\ncontrollers: []\n"
        + textwrap.dedent(rules).lstrip("\n"),
        encoding="utf-8",
    )
    return config


def test_check_refuses_rules_that_cannot_work_with_the_contexts(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        rules:
          - {name: a, kind: count, mask: "devices.*", event: eror, count: 2, within: 1m}
          - {name: b, kind: count, mask: devices.*, event: error, filter: data.nope > 1, count: 2, within: 1m}
          - {name: c, kind: threshold, event: measurement, open: 'data.value > "hot"', close: data.value < 1}
          - {name: d, kind: count, mask: "devices.*", event: error, per: data.cod, count: 2, within: 1m}
          - {name: e, kind: escalation, mask: "devices.*", event: error, steps: [{after: 1m}]}
          - {name: f, kind: count, mask: "devices.*", event: error, count: 2, within: 1m, alert: devices.x}
          - {name: g, kind: count, mask: devices.*, event: error, count: 2, within: 1m, alert: nowhere.at.all}
          - {name: h, kind: count, mask: "devices.*", event: error, count: 2, within: 1m}
          - {name: i, kind: escalation, source: alarms, mask: devices.*, event: stateChanged,
             steps: [{after: 1m}]}
        """,
    )
    found = "\n".join(check_files([config]))
    at = f"{config}:"
    assert f"{at}6:" in found and "watches event 'eror', which no context under 'devices.*' defines" in found
    assert "did you mean 'error'" in found
    assert f"{at}7:" in found and "'filter' of rule 'b' cannot match 'error'" in found
    assert f"{at}8:" in found and "'open' of rule 'c' cannot match 'measurement'" in found
    assert "data.value is a float field; it cannot be compared with the string 'hot'" in found
    assert f"{at}9:" in found and "'per' of rule 'd' names data.cod" in found
    assert f"{at}10:" in found and "does not require acknowledgement" in found
    assert f"{at}11:" in found and "rule 'f' fires alert, alertCleared in 'devices.x'" in found
    assert f"{at}12:" in found and "rule 'g' fires in 'nowhere.at.all', which does not exist" in found
    assert f"{at}13:" not in found
    assert f"{at}14:" in found and "escalates alarms of 'stateChanged', which raises none" in found
    with pytest.raises(ConfigError):
        load_all(config)


def test_check_refuses_a_filter_that_never_holds_for_the_watched_event(tmp_path: Path) -> None:
    """A rule watches one event name: a filter that names another (==, in) can never match it."""
    config = write(
        tmp_path,
        """
        rules:
          - {name: a, kind: count, mask: "devices.*", event: error, filter: 'name == "measurement"',
             count: 2, within: 1m}
          - {name: b, kind: threshold, mask: "devices.*", event: measurement, open: data.value > 80,
             close: 'data.value < 70 and name in ["error", "connected"]'}
          - {name: c, kind: count, mask: "devices.*", event: error, filter: 'not (name != "error")',
             count: 2, within: 1m}
          - {name: d, kind: count, mask: "devices.*", event: error,
             filter: 'name == "measurement" or data.code == "E1"', count: 2, within: 1m}
          - {name: e, kind: count, mask: "devices.*", event: error, filter: 'name not in ["error"]',
             count: 2, within: 1m}
        """,
    )
    found = check_files([config])
    at = f"{config}:"
    assert [line.split(":")[1] for line in found] == ["6", "9", "14"], found
    assert found[0].startswith(f"{at}6:") and "'filter' of rule 'a' cannot match 'error'" in found[0]
    assert "it never holds for an event named 'error'" in found[0]
    assert "'close' of rule 'b' cannot match 'measurement'" in found[1]
    assert "'filter' of rule 'e' cannot match 'error'" in found[2]


def test_check_refuses_a_context_filter_no_context_under_the_rules_mask_can_match(tmp_path: Path) -> None:
    """A rule sees events of the contexts its mask matches: a filter on the context that none
    of those can meet (a mask with no context in common, a path outside) never lets it fire."""
    config = write(
        tmp_path,
        """
        rules:
          - {name: a, kind: count, mask: "devices.*", event: error, filter: 'context ~ "alerts.**"',
             count: 2, within: 1m}
          - {name: b, kind: count, mask: "devices.*", event: error, filter: 'context ~ "devices.*.*"',
             count: 2, within: 1m}
          - {name: c, kind: threshold, mask: "devices.**", event: measurement, open: data.value > 80,
             close: 'data.value < 70 and not context ~ "**"'}
          - {name: d, kind: count, mask: "devices.*", event: error, filter: 'context == "alerts.x"',
             count: 2, within: 1m}
          - {name: e, kind: count, mask: "devices.*", event: error,
             filter: 'context in ["devices", "alerts.x"] or data.code == "E1"', count: 2, within: 1m}
          - {name: f, kind: count, mask: "devices.*", event: error, filter: 'context ~ "**.plc1"',
             count: 2, within: 1m}
          - {name: g, kind: count, mask: "devices.**", event: error, filter: 'not context ~ "devices.*"',
             count: 2, within: 1m}
          - {name: h, kind: count, mask: "devices.*", event: error, filter: 'context != "devices.plc1"',
             count: 2, within: 1m}
        """,
    )
    found = check_files([config])
    at = f"{config}:"
    assert [line.split(":")[1] for line in found] == ["6", "8", "11", "12"], found
    assert found[0].startswith(f"{at}6:") and "'filter' of rule 'a' cannot match 'error'" in found[0]
    assert "it never holds for a context under 'devices.*', the rule's mask" in found[0]
    assert "'filter' of rule 'b'" in found[1] and "'close' of rule 'c'" in found[2]
    assert "'filter' of rule 'd'" in found[3]


def test_the_shipped_alert_template_can_hold_every_kind_of_rule(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        rules:
          - {name: burst, kind: count, mask: "devices.*", event: error, count: 2, within: 1m}
          - {name: page, kind: escalation, mask: "alerts.**", event: alert, steps: [{after: 1m}]}
        """,
    )
    assert check_files([config]) == []
    loaded, _ = load_all(config)
    assert [r.name for r in loaded.sections["rules"]] == ["burst", "page"]
