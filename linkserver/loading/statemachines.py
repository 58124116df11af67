"""``state_machines:`` of context files -> core :class:`StateMachine` objects.

A machine is named globally like formats and templates; a template attaches it
with ``state_machine: NAME`` (docs/yaml.md, "State machines"). Every problem is
reported at its node: unknown states, duplicate transitions and unreachable
states here, events no context using the machine defines in
:meth:`MachineReader.check_events` once the templates are resolved.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from linkserver.core.categories import STATE_CHANGED
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import FilterError, InvalidName
from linkserver.core.filters import parse_filter
from linkserver.core.paths import check_name
from linkserver.core.statemachines import StateMachine, Transition
from linkserver.loading.entries import Entries, as_mapping
from linkserver.loading.problems import Location
from linkserver.loading.yamlnodes import Document, describe_node

MACHINE_KEYS = ("description", "initial", "states", "transitions")
TRANSITION_KEYS = ("from", "to", "action", "event", "guard")


@attrs.define
class ReadMachine:
    machine: StateMachine
    doc: Document
    location: Location
    key: Node
    transition_nodes: list[Node]  # per transition (a 'from' list makes several from one node)
    bad: bool = False  # reported already: kept so that templates naming it get no follow-up error


class MachineReader:
    """Collects the machines of every file; names are global."""

    def __init__(self) -> None:
        self.machines: dict[str, ReadMachine] = {}

    def add(self, doc: Document, entries: Entries) -> None:
        """Read the ``state_machines`` mapping of one file."""
        for key, node in entries.mapping("state_machines", "'state_machines'").items.values():
            name = key.value
            try:
                check_name(name, "state machine name")
            except InvalidName as exc:
                doc.error(key, str(exc))
                continue
            first = self.machines.get(name)
            if first is not None:
                doc.error(
                    key,
                    f"state machine {name!r} is already defined at {first.location.seen_from(doc.at(key))}; "
                    "define it once or rename one of them",
                )
                continue
            read = self._machine(doc, key, node, name)
            if read is not None:
                self.machines[name] = read

    def _machine(self, doc: Document, key: Node, node: Node, name: str) -> ReadMachine | None:
        where = f"state machine {name!r}"
        entries = as_mapping(doc, node, where)
        entries.check_keys(MACHINE_KEYS)
        description = entries.text("description", "")
        has_initial = entries.require("initial")
        initial = entries.text("initial", "")
        entries.require("states")
        states: list[str] = []
        for item in entries.sequence("states"):
            if isinstance(item, ScalarNode) and item.tag == "tag:yaml.org,2002:str":
                states.append(item.value)
            else:
                entries.error(item, f"the states of {where} must be names, got {describe_node(item)}")
        transitions: list[Transition] = []
        nodes: list[Node] = []
        for item in entries.sequence("transitions"):
            for transition in self._transitions(doc, item, where, entries):
                transitions.append(transition)
                nodes.append(item)
        if entries.bad or not has_initial:
            return ReadMachine(
                StateMachine(name=name, states=(), initial="", transitions=()),
                doc,
                doc.at(key),
                key,
                [],
                bad=True,
            )
        machine = StateMachine(
            name=name,
            states=states,
            initial=initial,
            transitions=transitions,
            description=description if isinstance(description, str) else "",
        )
        problems = machine.problems()
        for where, message in problems:
            at = nodes[where] if isinstance(where, int) else entries.get(where)
            doc.error(at or key, message)
        return ReadMachine(machine, doc, doc.at(key), key, nodes, bad=bool(problems))

    def _transitions(self, doc: Document, node: Node, where: str, parent: Entries) -> list[Transition]:
        entries = as_mapping(doc, node, f"a transition of {where}", parent=parent)
        entries.check_keys(TRANSITION_KEYS)
        sources: list[str] = []
        source = entries.get("from")
        if source is None:
            entries.require("from")
        elif isinstance(source, SequenceNode):
            sources = [item.value for item in source.value if isinstance(item, ScalarNode)]
            if len(sources) != len(source.value) or not sources:
                entries.error(
                    source, f"'from' in a transition of {where} must be a state or a list of states"
                )
        else:
            value = entries.text("from")
            if isinstance(value, str):
                sources = [value]
        entries.require("to")
        target = entries.text("to", "")
        action = entries.text("action", None)
        event = entries.text("event", None)
        guard_text = entries.text("guard", None)
        if (action is None) == (event is None) and not entries.bad:
            entries.error(
                node, f"a transition of {where} needs exactly one of 'action' (requested) and 'event' (fired)"
            )
        guard = None
        if isinstance(guard_text, str):
            if action is not None:
                entries.error(entries.get("guard"), f"a guard applies to event transitions only ({where})")  # type: ignore[arg-type]
            try:
                guard = parse_filter(guard_text)
            except FilterError as exc:
                entries.error(entries.get("guard"), f"the guard of a transition of {where}: {exc}")  # type: ignore[arg-type]
        for name, value in (("action", action), ("event", event)):
            if isinstance(value, str):
                try:
                    check_name(value, f"{name} name")
                except InvalidName as exc:
                    entries.error(entries.get(name), str(exc))  # type: ignore[arg-type]
        if entries.bad:
            parent.bad = True
            return []
        return [
            Transition(
                source=s, target=target, action=action, event=event, guard=guard, guard_text=guard_text
            )
            for s in sources
        ]

    def check_events(self, name: str, definitions: Mapping[str, EventDefinition], user: str) -> None:
        """Report each event transition of machine ``name`` whose event ``definitions`` lack, and a
        missing or non-persistent ``stateChanged``, for a context (``user``) using it."""
        read = self.machines.get(name)
        if read is None or read.bad:
            return
        for index, event in read.machine.unknown_events(definitions):
            read.doc.error(
                read.transition_nodes[index],
                f"state machine {name!r}: unknown event {event!r} ({user} uses this machine and defines "
                "no such event); define it there or fix the name",
            )
        for index, message in read.machine.guard_problems(definitions):
            node = read.transition_nodes[index]
            read.doc.error(_value_of(node, "guard") or node, f"state machine {name!r} ({user}): {message}")
        changed = definitions.get(STATE_CHANGED)
        if changed is None:
            read.doc.error(
                read.key,
                f"state machine {name!r}: {user} uses it but defines no {STATE_CHANGED!r} event, which "
                "every transition fires; add one (see docs/resources.md)",
            )
        elif not changed.persistent:
            read.doc.error(
                read.key,
                f"state machine {name!r}: the {STATE_CHANGED!r} event of {user} is not persistent; the "
                "state is stored with it, so it must be: set persistent: true",
            )


def _value_of(node: Node, key: str) -> Node | None:
    """The value under ``key`` of a mapping node (where a problem with it is reported)."""
    if isinstance(node, MappingNode):
        for item_key, value in node.value:
            if isinstance(item_key, ScalarNode) and item_key.value == key:
                return value  # type: ignore[no-any-return]
    return None
