"""``state_machines:`` in context files: attached through templates; check refuses bad ones at file:line."""

from __future__ import annotations

import textwrap

import pytest

from linkserver.core.errors import ConfigError
from linkserver.loading import load_contexts_text

GOOD = """
state_machines:
  lamp:
    initial: off
    states: [off, on, broken]
    transitions:
      - {from: off, to: on, action: switch_on}
      - {from: on, to: off, action: switch_off}
      - {from: [off, on], to: broken, event: fault, guard: "level >= ERROR"}
templates:
  lamp:
    state_machine: lamp
    events:
      stateChanged: {persistent: true}
      fault: {}
contexts:
  lamps:
    child_templates: [lamp]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_contexts_text(textwrap.dedent(text), "m.yaml")
    return caught.value.problems


def test_a_machine_is_attached_to_the_contexts_of_its_template() -> None:
    catalog = load_contexts_text(textwrap.dedent(GOOD), "m.yaml")
    machine = catalog.templates["lamp"].state_machine
    assert machine is not None and machine is catalog.state_machines["lamp"]
    (lamps,) = catalog.contexts
    assert lamps.child_definitions is not None and lamps.child_definitions.state_machine is machine
    assert [t.describe() for t in machine.allowed("on")] == [
        "switch_off -> off",
        "on fault -> broken if level >= ERROR",
    ]


def test_unreachable_states_duplicates_and_unknown_events_are_refused_at_their_lines() -> None:
    text = GOOD.replace("states: [off, on, broken]", "states: [off, on, broken, lost]").replace(
        "      - {from: on, to: off, action: switch_off}\n",
        "      - {from: on, to: off, action: switch_off}\n"
        "      - {from: on, to: broken, action: switch_off}\n"
        "      - {from: off, to: on, event: flicker}\n",
    )
    assert problems(text) == [
        "m.yaml:5:13: state machine 'lamp': state 'lost' cannot be reached from the initial state 'off'; "
        "add a transition to it or remove it",
        "m.yaml:9:9: state machine 'lamp': duplicate transition from on on action switch_off (transition 2 "
        "already has it); remove one or give them different guards",
    ]
    text = GOOD.replace(
        "      - {from: on, to: off, action: switch_off}\n",
        "      - {from: on, to: off, action: switch_off}\n      - {from: off, to: on, event: flicker}\n",
    )
    assert problems(text) == [
        "m.yaml:9:9: state machine 'lamp': unknown event 'flicker' (the children of context 'lamps' uses "
        "this machine and defines no such event); define it there or fix the name"
    ]


def test_a_transition_needs_one_trigger_known_states_and_a_valid_guard() -> None:
    text = GOOD.replace("action: switch_on}", "action: switch_on, event: fault}").replace(
        'guard: "level >= ERROR"', 'guard: "level >= LOUD"'
    )
    found = problems(text)
    assert found[0] == (
        "m.yaml:7:9: a transition of state machine 'lamp' needs exactly one of 'action' (requested) "
        "and 'event' (fired)"
    )
    assert found[1].startswith("m.yaml:9:60: the guard of a transition of state machine 'lamp': ")


def test_an_unknown_machine_and_a_missing_state_changed_are_refused() -> None:
    assert problems(GOOD.replace("state_machine: lamp", "state_machine: lamps")) == [
        "m.yaml:12:20: unknown state machine 'lamps' in template 'lamp'; did you mean 'lamp'?"
    ]
    assert problems(GOOD.replace("      stateChanged: {persistent: true}\n", "")) == [
        "m.yaml:3:3: state machine 'lamp': the children of context 'lamps' uses it but defines no "
        "'stateChanged' event, which every transition fires; add one (see docs/resources.md)"
    ]
    assert problems(GOOD.replace("stateChanged: {persistent: true}", "stateChanged: {}")) == [
        "m.yaml:3:3: state machine 'lamp': the 'stateChanged' event of the children of context 'lamps' is "
        "not persistent; the state is stored with it, so it must be: set persistent: true"
    ]


def test_the_shipped_machines_load() -> None:
    from linkserver.loading.check import load_all

    _, catalog = load_all()
    assert sorted(catalog.state_machines) == ["device", "vm"]
    assert catalog.state_machines["vm"].states == (
        "Stopped", "Starting", "Running", "Stopping", "Migrating", "Error", "Destroyed", "Expunging",
    )  # fmt: skip
