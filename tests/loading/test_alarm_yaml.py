"""The alarm keys of definitions: reduction_key, clears, auto_clear, alarm_level; bad ones refused
at file:line."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from linkserver.core.alarms import AlarmLevel
from linkserver.core.errors import ConfigError
from linkserver.loading import load_contexts_text

GOOD = """
templates:
  port:
    events:
      linkDown:
        level: WARNING
        persistent: true
        reduction_key: "{context}:{name}:{data.ifIndex}"
        auto_clear: 2h
        alarm_level: last
        format:
          fields:
            - {name: ifIndex, type: integer}
      linkUp:
        persistent: true
        clears: linkDown
        format:
          fields:
            - {name: ifIndex, type: integer}
            - {name: speed, type: integer, default: 0}
contexts:
  switches:
    child_templates: [port]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_contexts_text(textwrap.dedent(text), "a.yaml")
    return caught.value.problems


def test_alarm_keys_are_read_into_the_definition() -> None:
    catalog = load_contexts_text(textwrap.dedent(GOOD), "a.yaml")
    port = catalog.templates["port"]
    down, up = port["linkDown"].alarm, port["linkUp"].alarm
    assert down is not None and up is not None
    assert down.reduction_key is not None and down.reduction_key.text == "{context}:{name}:{data.ifIndex}"
    assert down.reduction_key.data_fields == ("ifIndex",)
    assert down.auto_clear == timedelta(hours=2) and down.level is AlarmLevel.LAST
    assert up.clears == ("linkDown",) and up.reduction_key is None
    assert port["linkUp"].alarm is not None and not up.raises


def test_the_level_policy_is_highest_by_default() -> None:
    catalog = load_contexts_text(textwrap.dedent(GOOD.replace("        alarm_level: last\n", "")), "a.yaml")
    alarm = catalog.templates["port"]["linkDown"].alarm
    assert alarm is not None and alarm.level is AlarmLevel.HIGHEST and alarm.auto_clear == timedelta(hours=2)


def test_a_definition_without_alarm_keys_has_no_alarm_part() -> None:
    catalog = load_contexts_text("contexts:\n  a:\n    events:\n      e: {persistent: true}\n", "a.yaml")
    assert catalog.contexts[0].definitions["e"].alarm is None


def test_a_key_naming_an_unknown_field_is_refused_at_its_line() -> None:
    text = GOOD.replace('{data.ifIndex}"', '{data.ifIndx}"')
    assert problems(text) == [
        "a.yaml:8:9: event 'linkDown': the reduction key: data.ifIndx is not a field of the event format; "
        "did you mean 'data.ifIndex'? (its fields: ifIndex)"
    ]


def test_a_bad_key_is_reported_with_the_definitions_other_problems_at_once() -> None:
    """A bad message (or any other key) of the same definition used to hide the key's problem
    until the message was fixed and the file checked again."""
    text = GOOD.replace('{data.ifIndex}"', '{data.ifIndx}"').replace(
        "        alarm_level: last\n", '        alarm_level: last\n        message: "port {data.port} down"\n'
    )
    found = problems(text)
    assert [line.split(": ", 1)[0] for line in found] == ["a.yaml:8:9", "a.yaml:11:30"], found
    assert "the reduction key: data.ifIndx is not a field" in found[0]
    assert "message of event 'linkDown': data.port is not a field" in found[1]


def test_a_key_that_may_render_empty_is_refused() -> None:
    text = """
    contexts:
      a:
        events:
          e:
            persistent: true
            reduction_key: "{data.code}"
            format: {fields: [{name: code, type: string, nullable: true}]}
          f:
            persistent: true
            reduction_key: "  "
    """
    found = problems(text)
    assert found[0].startswith("a.yaml:7:9: event 'e': the reduction key '{data.code}' may render empty")
    assert "add {context}, {name} or some text, e.g. '{context}:{name}:{data.code}'" in found[0]
    assert found[1] == (
        "a.yaml:11:24: event 'f': a reduction key must not be empty; name what identifies the problem, "
        "e.g. '{context}:{name}'"
    )
    assert len(found) == 2


def test_a_key_of_a_field_that_cannot_be_empty_is_fine() -> None:
    text = """
    contexts:
      a:
        events:
          e:
            persistent: true
            reduction_key: "{data.code}"
            format: {fields: [{name: code, type: string, min: 1}]}
    """
    catalog = load_contexts_text(textwrap.dedent(text), "a.yaml")
    assert catalog.contexts[0].definitions["e"].alarm is not None


def test_malformed_and_unknown_placeholders_are_refused() -> None:
    text = GOOD.replace("{context}:{name}:{data.ifIndex}", "{context}:{host}").replace(
        "clears: linkDown", 'clears: [linkDown]\n        reduction_key: "{oops"'
    )
    found = problems(text)
    assert any(
        p.startswith("a.yaml:8:24: event 'linkDown': reduction key '{context}:{host}': unknown placeholder")
        for p in found
    )
    never_closed = "reduction key '{oops': '{' is never closed; write '{{' for a literal brace"
    assert f"a.yaml:17:24: event 'linkUp': {never_closed}" in found


def test_a_clear_naming_an_undefined_event_is_refused_at_its_line() -> None:
    assert problems(GOOD.replace("clears: linkDown", "clears: [linkDown, linkDwn]")) == [
        "a.yaml:16:17: event 'linkUp' clears 'linkDwn', which no context file defines; "
        "did you mean 'linkDown'?"
    ]


def test_a_clear_naming_an_event_the_context_lacks_is_refused() -> None:
    text = GOOD + textwrap.indent(
        "other:\n  events:\n    linkUp: {persistent: true, clears: linkDown, "
        "format: {fields: [{name: ifIndex, type: integer}]}}\n",
        "  ",
    )
    assert problems(text) == [
        "a.yaml:26:42: event 'linkUp' clears 'linkDown', which context 'other' (using it) does not define; "
        "define 'linkDown' there too or remove it from 'clears'"
    ]


def test_a_clear_must_be_able_to_render_the_cleared_key() -> None:
    text = GOOD.replace(
        "            - {name: ifIndex, type: integer}\n            - {name: speed",
        "            - {name: speed",
    )
    assert problems(text) == [
        "a.yaml:16:17: event 'linkUp' clears 'linkDown', whose reduction key "
        "'{context}:{name}:{data.ifIndex}' reads data.ifIndex; 'linkUp' has no such field, so it "
        "cannot tell which alarm it clears: add the field to its format"
    ]


def test_clearing_an_event_that_raises_no_alarms_is_refused() -> None:
    text = GOOD.replace('        reduction_key: "{context}:{name}:{data.ifIndex}"\n        auto_clear: 2h\n'
                        "        alarm_level: last\n", "")  # fmt: skip
    assert problems(text) == [
        "a.yaml:13:17: event 'linkUp' clears 'linkDown', which raises no alarms (it has no reduction_key); "
        "give 'linkDown' a reduction_key or remove it from 'clears'"
    ]


def test_inconsistent_alarm_keys_are_refused() -> None:
    text = """
    contexts:
      a:
        events:
          transient:
            reduction_key: "{context}:{name}"
          both:
            persistent: true
            reduction_key: "{name}"
            clears: transient
          alone:
            persistent: true
            auto_clear: 1h
          wrong:
            persistent: true
            reduction_key: "{name}"
            alarm_level: middle
            auto_clear: soon
    """
    found = problems(text)
    assert (
        "a.yaml:6:9: event 'transient': alarms are updated in the commit that stores the event, so an event "
        "with reduction_key must be persistent; set persistent: true"
    ) in found
    assert (
        "a.yaml:10:9: event 'both': an event either raises alarms (reduction_key) or clears them (clears), "
        "not both; define a separate event for the resolution"
    ) in found
    assert "a.yaml:13:9: event 'alone': auto_clear needs a reduction_key (it clears its alarms)" in found
    assert (
        "a.yaml:17:22: 'alarm_level' in event 'wrong' must be highest or last, got the string 'middle'"
        in found
    )
    assert any(
        p.startswith("a.yaml:18:21: 'auto_clear' in event 'wrong' must be a positive duration") for p in found
    )


def test_the_standard_template_defines_alarm_changed() -> None:
    from linkserver.loading import load_contexts
    from linkserver.loading.shipped import SHIPPED_CONTEXTS

    catalog = load_contexts([SHIPPED_CONTEXTS])
    changed = catalog.templates["standard"]["alarmChanged"]
    assert not changed.persistent
    assert {"id", "key", "state", "count", "change"} <= set(changed.format.field_names)
