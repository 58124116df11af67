"""Reusable sets of event definitions and the description of a context tree.

A :class:`DefinitionSet` is immutable and shared: every device context of one
type points at the same set, so 100k devices cost 100k references, not 100k
copies of their definitions. A :class:`Catalog` is what the loading layer
makes of the YAML files: named templates and the contexts to create.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import attrs

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import InvalidDefinition
from linkserver.core.paths import parse_path
from linkserver.core.statemachines import StateMachine


class DefinitionSet(Mapping[str, EventDefinition]):
    """An immutable mapping of event name to definition, optionally named (a template).

    ``state_machine`` is the state machine of the resources using the set (a context whose
    definitions come from a template with ``state_machine:``), or None.
    """

    __slots__ = ("name", "_definitions", "state_machine")

    def __init__(
        self,
        definitions: Iterable[EventDefinition] = (),
        name: str | None = None,
        state_machine: StateMachine | None = None,
    ) -> None:
        self.name = name
        table: dict[str, EventDefinition] = {}
        for definition in definitions:
            if definition.name in table:
                raise InvalidDefinition(
                    f"event {definition.name!r} is defined twice" + (f" in template {name!r}" if name else "")
                )
            table[definition.name] = definition
        self._definitions = table
        # Its guards tested against these definitions' events: labels resolved as in filters.
        self.state_machine = state_machine.bound_to(table) if state_machine is not None else None

    def __getitem__(self, name: str) -> EventDefinition:
        return self._definitions[name]

    def get(self, name: str, default: EventDefinition | None = None) -> EventDefinition | None:  # type: ignore[override]
        return self._definitions.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)

    def __contains__(self, name: object) -> bool:
        return name in self._definitions

    def merged(self, *others: DefinitionSet, name: str | None = None) -> DefinitionSet:
        """A new set with this set's definitions and the others'; later sets win on a name
        (and on the state machine)."""
        table = dict(self._definitions)
        machine = self.state_machine
        for other in others:
            table.update(other._definitions)
            machine = other.state_machine or machine
        return DefinitionSet(table.values(), name=name, state_machine=machine)

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"DefinitionSet({label}{sorted(self._definitions)})"


EMPTY_DEFINITIONS = DefinitionSet(name="empty")


@attrs.frozen(kw_only=True)
class ContextSpec:
    """A context to create at start-up.

    ``definitions`` are the context's own events; ``child_definitions`` the
    events of children added at run time (e.g. every device under ``devices``).
    """

    path: str = attrs.field(converter=lambda path: parse_path(path))
    description: str = ""
    definitions: DefinitionSet = EMPTY_DEFINITIONS
    child_definitions: DefinitionSet | None = None


@attrs.frozen(kw_only=True)
class Catalog:
    """Everything the context YAML files define: templates and contexts, parents first."""

    templates: Mapping[str, DefinitionSet] = attrs.field(factory=dict)
    contexts: tuple[ContextSpec, ...] = attrs.field(default=(), converter=tuple)
    state_machines: Mapping[str, StateMachine] = attrs.field(factory=dict)
