"""The state machine model: transitions by action or event, refusals, and a definition's problems."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from linkserver.core.events import Event
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level
from linkserver.core.statemachines import InvalidTransition, StateMachine, Transition


def machine(*transitions: Transition, states: tuple[str, ...] = ("off", "on", "broken")) -> StateMachine:
    return StateMachine(name="lamp", states=states, initial="off", transitions=transitions)


LAMP = machine(
    Transition(source="off", target="on", action="switch_on"),
    Transition(source="on", target="off", action="switch_off"),
    Transition(
        source="on",
        target="broken",
        event="fault",
        guard=parse_filter("level >= ERROR"),
        guard_text="level >= ERROR",
    ),  # fmt: skip
)


def fault(level: Level) -> Event:
    return Event(1, "lamps.l1", "fault", level, datetime(2026, 1, 1, tzinfo=UTC), None, None, None, ())


def test_an_action_takes_its_transition_and_a_target_state_finds_the_action() -> None:
    assert LAMP.for_request("lamps.l1", "off", action="switch_on").target == "on"
    assert LAMP.for_request("lamps.l1", "on", to="off").action == "switch_off"


def test_an_invalid_transition_names_the_current_state_and_what_it_allows() -> None:
    with pytest.raises(InvalidTransition) as caught:
        LAMP.for_request("lamps.l1", "off", action="switch_off")
    assert str(caught.value) == (
        "lamps.l1 is off: action 'switch_off' is not allowed from off; allowed from off: switch_on -> on"
    )
    assert caught.value.state == "off" and caught.value.allowed == ("switch_on -> on",)


def test_a_final_state_says_nothing_leaves_it() -> None:
    with pytest.raises(InvalidTransition, match="broken is final: no transition leaves it"):
        LAMP.for_request("lamps.l1", "broken", to="on")


def test_an_unknown_action_or_state_is_named_with_the_known_ones() -> None:
    with pytest.raises(
        InvalidTransition, match=r"lamp has no action 'explode'; its actions: switch_off, switch_on"
    ):
        LAMP.for_request("lamps.l1", "off", action="explode")
    with pytest.raises(InvalidTransition, match=r"lamp has no state 'dim'; its states: off, on, broken"):
        LAMP.for_request("lamps.l1", "off", to="dim")


def test_an_event_takes_the_first_transition_whose_guard_matches() -> None:
    assert LAMP.for_event("on", fault(Level.ERROR)).target == "broken"  # type: ignore[union-attr]
    assert LAMP.for_event("on", fault(Level.WARNING)) is None
    assert LAMP.for_event("off", fault(Level.ERROR)) is None


def test_problems_name_unreachable_states_duplicates_and_unknown_states() -> None:
    bad = machine(
        Transition(source="off", target="on", action="switch_on"),
        Transition(source="off", target="broken", action="switch_on"),
        Transition(source="on", target="dim", action="dim"),
        states=("off", "on", "broken", "lost"),
    )
    assert [message for _, message in bad.problems()] == [
        "state machine 'lamp': duplicate transition from off on action switch_on (transition 1 already "
        "has it); remove one or give them different guards",
        "state machine 'lamp': unknown state 'dim' in 'to'; its states: off, on, broken, lost",
        "state machine 'lamp': state 'lost' cannot be reached from the initial state 'off'; add a "
        "transition to it or remove it",
    ]
    assert [where for where, _ in bad.problems()] == [1, 2, "states"]


def test_the_initial_state_must_be_a_state() -> None:
    odd = StateMachine(name="m", states=("a",), initial="b", transitions=())
    assert odd.problems() == [
        ("initial", "state machine 'm': the initial state 'b' is not one of its states")
    ]
