"""State machines of resources: states, an initial state, transitions (DESIGN.md §2).

A :class:`StateMachine` is pure data plus the rules: which transition a
requested action (or target state) or a fired event takes from a state, and
every inconsistency of a definition (:meth:`StateMachine.problems`). Where the
current state of a resource lives, and the ``stateChanged`` event a
transition fires, are the server's (linkserver/server/resources.py).

A transition is triggered either by an **action** (``start``, requested by a
person or a controller through the API) or by an **event** fired in the
resource's context (``connected``), optionally only when its **guard** (a
filter expression over that event) matches. From one state, one action leads
to one place; several transitions on the same event are tried in order, the
first whose guard matches wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from linkserver.core.errors import LinkServerError
from linkserver.core.paths import display, is_valid_name

if TYPE_CHECKING:  # the filters (and formats) stay unloaded for the clients, which import the errors
    from linkserver.core.filters import Filter


class InvalidTransition(LinkServerError, ValueError):
    """A transition that the resource's state machine does not allow from its current state.

    ``state`` is the current state, ``allowed`` the transitions it allows (as text).
    """

    def __init__(self, message: str, *, path: str = "", state: str = "", allowed: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.path, self.state, self.allowed = path, state, tuple(allowed)


class NotAResource(LinkServerError, LookupError):
    """A context without a state machine was asked for its state or a transition."""


@attrs.frozen(kw_only=True)
class Transition:
    """``source -> target`` on ``action`` or on ``event`` (exactly one), if ``guard`` matches."""

    source: str
    target: str
    action: str | None = None
    event: str | None = None
    guard: Filter | None = attrs.field(default=None, eq=False)
    guard_text: str | None = None  # the guard as written, for messages and equality
    # ``action start`` or ``event connected``: made once, a requested transition's cause is it.
    trigger: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        trigger = f"action {self.action}" if self.action is not None else f"event {self.event}"
        object.__setattr__(self, "trigger", trigger)

    def describe(self) -> str:
        """``start -> starting`` or ``on connected -> online`` (with ``if GUARD``)."""
        head = self.action if self.action is not None else f"on {self.event}"
        guard = f" if {self.guard_text}" if self.guard_text else ""
        return f"{head} -> {self.target}{guard}"


@attrs.frozen(kw_only=True)
class StateMachine:
    """One resource type's states and transitions. Build it, then look at :meth:`problems`."""

    name: str
    states: tuple[str, ...] = attrs.field(converter=tuple)
    initial: str
    transitions: tuple[Transition, ...] = attrs.field(converter=tuple)
    description: str = ""
    _from: dict[str, tuple[Transition, ...]] = attrs.field(init=False, eq=False, repr=False)
    _by_action: dict[tuple[str, str], Transition] = attrs.field(init=False, eq=False, repr=False)
    # The event names some transition is triggered by, and the actions: asked per event fired.
    events: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    actions: frozenset[str] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        table: dict[str, list[Transition]] = {state: [] for state in self.states}
        by_action: dict[tuple[str, str], Transition] = {}
        for transition in self.transitions:
            table.setdefault(transition.source, []).append(transition)
            if transition.action is not None:
                by_action.setdefault((transition.source, transition.action), transition)
        object.__setattr__(self, "_from", {state: tuple(found) for state, found in table.items()})
        object.__setattr__(self, "_by_action", by_action)
        events = frozenset(t.event for t in self.transitions if t.event is not None)
        object.__setattr__(self, "events", events)
        actions = frozenset(t.action for t in self.transitions if t.action is not None)
        object.__setattr__(self, "actions", actions)

    def allowed(self, state: str) -> tuple[Transition, ...]:
        """The transitions out of ``state`` (none for a final state or an unknown one)."""
        return self._from.get(state, ())

    def for_request(
        self, path: str, state: str, *, action: str | None = None, to: str | None = None
    ) -> Transition:
        """The transition an action (or a request to reach state ``to``) takes from ``state``.

        Raises InvalidTransition naming the current state and the transitions it allows.
        A request by target state takes an action transition only (events happen; they
        are not requested).
        """
        if action is not None and to is None:
            found = self._by_action.get((state, action))
            if found is not None:
                return found
        if (action is None) == (to is None):
            raise ValueError("give exactly one of action and to")
        for transition in self.allowed(state):
            if transition.action is None:
                continue
            if action is not None and transition.action == action:
                return transition
            if to is not None and transition.target == to:
                return transition
        wanted = f"action {action!r}" if action is not None else f"a transition to {to!r}"
        known = ""
        if action is not None and action not in self.actions:
            known = f" ({self.name} has no action {action!r}; its actions: {', '.join(sorted(self.actions))})"
        elif to is not None and to not in self.states:
            known = f" ({self.name} has no state {to!r}; its states: {', '.join(self.states)})"
        raise InvalidTransition(
            f"{display(path)} is {state}: {wanted} is not allowed from {state}{known}; "
            f"{self.allowed_text(state)}",
            path=path,
            state=state,
            allowed=[t.describe() for t in self.allowed(state)],
        )

    def allowed_text(self, state: str) -> str:
        allowed = self.allowed(state)
        if state not in self.states:  # stored before the machine's definition changed
            return (
                f"{state} is not a state of {self.name} (its states: {', '.join(self.states)}); "
                f"its definition changed since: add {state} back to it to move the resource on"
            )
        if not allowed:
            return f"{state} is final: no transition leaves it"
        return f"allowed from {state}: " + "; ".join(t.describe() for t in allowed)

    def for_event(self, state: str, event: Any) -> Transition | None:
        """The transition ``event`` (fired in the resource's context) takes from ``state``, or None."""
        name = event.name
        for transition in self.allowed(state):
            if transition.event == name and (transition.guard is None or transition.guard.matches(event)):
                return transition
        return None

    def problems(self) -> list[tuple[int | str, str]]:
        """Every inconsistency as ``(where, message)``: ``where`` is the transition's position, or
        the key of the machine it is about (``states``, ``initial``)."""
        found: list[tuple[int | str, str]] = []
        where = f"state machine {self.name!r}"
        seen_states: set[str] = set()
        for state in self.states:
            if not is_valid_name(state):
                found.append(
                    ("states", f"{where}: invalid state name {state!r}: use letters, digits and '_' only")
                )
            if state in seen_states:
                found.append(("states", f"{where}: state {state!r} is listed twice"))
            seen_states.add(state)
        if not self.states:
            found.append(("states", f"{where}: it has no states; list them under 'states'"))
        if self.initial not in seen_states:
            found.append(("initial", f"{where}: the initial state {self.initial!r} is not one of its states"))
        triggers: dict[tuple[str, str, str | None], int] = {}
        for index, transition in enumerate(self.transitions):
            for end, state in (("from", transition.source), ("to", transition.target)):
                if state not in seen_states:
                    found.append(
                        (
                            index,
                            f"{where}: unknown state {state!r} in '{end}'; "
                            f"its states: {', '.join(self.states)}",
                        )
                    )
            if transition.action is not None and not is_valid_name(transition.action):
                found.append((index, f"{where}: invalid action name {transition.action!r}"))
            key = (
                transition.source,
                transition.trigger,
                transition.guard_text if transition.event is not None else None,
            )
            first = triggers.get(key)
            if first is not None:
                found.append(
                    (
                        index,
                        f"{where}: duplicate transition from {transition.source} on {transition.trigger}"
                        f" (transition {first + 1} already has it); remove one or give them different guards",
                    )
                )
            else:
                triggers[key] = index
        if self.initial in seen_states:
            reachable = self.reachable()
            for state in self.states:
                if state not in reachable:
                    found.append(
                        (
                            "states",
                            f"{where}: state {state!r} cannot be reached from the initial state "
                            f"{self.initial!r}; add a transition to it or remove it",
                        )
                    )
        return found

    def reachable(self) -> set[str]:
        """The states some sequence of transitions leads to from the initial state."""
        reached = {self.initial}
        todo = [self.initial]
        while todo:
            for transition in self.allowed(todo.pop()):
                if transition.target not in reached:
                    reached.add(transition.target)
                    todo.append(transition.target)
        return reached

    def bound_to(self, definitions: Mapping[str, Any]) -> StateMachine:
        """This machine with each guard fitted to the definition of its event in ``definitions``
        (a context's, core.filters.labels.bind_filter: value labels resolved, so
        ``data.status == "down"`` holds where down is stored as 2); itself when no guard changes.
        A guard that fits no definition is kept as written: the loader reports it at its line
        (:meth:`guard_problems`)."""
        if not any(t.guard is not None for t in self.transitions):
            return self
        changed = False
        transitions = []
        for transition in self.transitions:
            guard = transition.guard
            definition = definitions.get(transition.event) if transition.event is not None else None
            if guard is not None and definition is not None:
                fitted = _fitted(guard, definition)
                if fitted is not guard:
                    transition = attrs.evolve(transition, guard=fitted)
                    changed = True
            transitions.append(transition)
        # mypy types a converter=tuple field's input as tuple's unsolved Iterable[_T_co]
        return attrs.evolve(self, transitions=transitions) if changed else self  # type: ignore[arg-type]

    def guard_problems(self, definitions: Mapping[str, Any]) -> list[tuple[int, str]]:
        """``(index, message)`` of each guard that cannot match its event as ``definitions``
        define it (an unknown field, a literal its field cannot be compared with, such as a
        word none of a coded field's labels)."""
        from linkserver.core.errors import FilterError
        from linkserver.core.filters.labels import bind_filter

        found = []
        for index, transition in enumerate(self.transitions):
            definition = definitions.get(transition.event) if transition.event is not None else None
            if transition.guard is None or definition is None:
                continue
            try:
                bind_filter(transition.guard, (definition,), repr(transition.event))
            except FilterError as exc:
                found.append((index, f"the guard {transition.guard_text!r} cannot match: {exc.message}"))
        return found

    def unknown_events(self, defined: Iterable[str]) -> list[tuple[int, str]]:
        """``(index, event)`` of each transition triggered by an event not in ``defined``."""
        names = set(defined)
        return [
            (index, t.event)
            for index, t in enumerate(self.transitions)
            if t.event is not None and t.event not in names
        ]


def _fitted(guard: Filter, definition: Any) -> Filter:
    from linkserver.core.errors import FilterError
    from linkserver.core.filters.labels import bind_filter  # the filters stay unloaded for clients

    try:
        return bind_filter(guard, (definition,), repr(definition.name))
    except FilterError:
        return guard
