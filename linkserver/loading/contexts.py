"""Context files (``contexts/*.yaml``) -> a core :class:`Catalog`.

Several files make one catalog: format and template names are global, and a
name defined twice is reported at both places. Reading happens in two
phases, so a file may use formats and templates defined in a later one:
:meth:`CatalogBuilder.add` reads each file's events at once (an event whose
format is defined in a later file waits for :meth:`CatalogBuilder.build`) and
keeps only the few nodes it still needs, so the node tree of one file at a
time is in memory; :meth:`CatalogBuilder.build` then resolves templates and
builds the contexts.

Definition sets are shared: every context (and every ``child_templates``)
naming the same templates and no events of its own gets the same
:class:`DefinitionSet` object, so 100k devices hold 100k references to one set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
from yaml.nodes import Node, ScalarNode

from linkserver.core.catalog import EMPTY_DEFINITIONS, Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import InvalidName
from linkserver.core.paths import check_name, display, parse_path
from linkserver.core.statemachines import StateMachine
from linkserver.loading.alarm_fields import check_clears
from linkserver.loading.entries import Entries, as_mapping
from linkserver.loading.formats import DefinitionReader, FormatNotYetKnown
from linkserver.loading.problems import Location, Problems, suggest
from linkserver.loading.statemachines import MachineReader
from linkserver.loading.yamlnodes import Document, collection_paused, describe_node, parse, read

TOP_KEYS = ("formats", "state_machines", "templates", "contexts")
TEMPLATE_KEYS = ("description", "include", "events", "state_machine")
CONTEXT_KEYS = ("description", "templates", "events", "child_templates")
YAML_SUFFIXES = (".yaml", ".yml")


@attrs.frozen
class Origin:
    """Where a definition comes from, to name both places of a conflict."""

    definition: EventDefinition
    location: Location
    owner: str  # "template 'standard'" or "context 'devices'"


@attrs.define
class _Named:
    doc: Document
    entries: Entries
    location: Location
    events: dict[str, Origin | _Pending] = attrs.field(factory=dict)


@attrs.define
class _Pending:
    """An event read again in :meth:`CatalogBuilder.build`: its format was not known yet."""

    doc: Document
    key: Node
    node: Node
    owner: str


class CatalogBuilder:
    """Collects context files, then builds one catalog from all of them."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.definitions = DefinitionReader()
        self._templates: dict[str, _Named] = {}
        self._contexts: dict[str, _Named] = {}
        self._resolved: dict[str, dict[str, Origin]] = {}
        self._resolving: list[str] = []
        self._template_sets: dict[str, DefinitionSet] = {}
        self._shared: dict[tuple[str, ...], DefinitionSet] = {}
        self.machines = MachineReader()
        self._machine_of: dict[str, str | None] = {}  # template -> its state machine's name
        self._checked_sets: set[int] = set()
        self.persistence: dict[str, set[bool]] = {}
        """Every event name defined anywhere -> the ``persistent`` values of its definitions."""

    # -- phase 1 -------------------------------------------------------------

    def add(self, doc: Document) -> None:
        """Collect the formats, templates and contexts of one file (an empty file is fine)."""
        top = as_mapping(doc, doc.root, "a context file")
        top.check_keys(TOP_KEYS)
        for key, node in top.mapping("formats", "'formats'").items.values():
            self.definitions.register_format(doc, key, node)
        self.machines.add(doc, top)
        self.definitions.deferring = True
        try:
            for key, node in top.mapping("templates", "'templates'").items.values():
                name = key.value
                try:
                    check_name(name, "template name")
                except InvalidName as exc:
                    doc.error(key, str(exc))
                    continue
                where = f"template {name!r}"
                if self._claim(self._templates, name, doc, key, where):
                    entries = as_mapping(doc, node, where)
                    entries.check_keys(TEMPLATE_KEYS)
                    entries.text("description")
                    self._templates[name] = _Named(
                        doc, entries, doc.at(key), self._events(doc, entries, where)
                    )
            for key, node in top.mapping("contexts", "'contexts'").items.values():
                try:
                    path = parse_path(key.value)
                except InvalidName as exc:
                    doc.error(key, str(exc))
                    continue
                where = f"context {display(path)!r}"
                if self._claim(self._contexts, path, doc, key, where):
                    entries = as_mapping(doc, node, where)
                    entries.check_keys(CONTEXT_KEYS)
                    self._contexts[path] = _Named(
                        doc, entries, doc.at(key), self._events(doc, entries, where)
                    )
        finally:
            self.definitions.deferring = False
        doc.release()  # what is still needed is referenced by the readers
        self.definitions.forget_nodes()

    @staticmethod
    def _claim(table: dict[str, _Named], name: str, doc: Document, key: Node, what: str) -> bool:
        first = table.get(name)
        if first is None:
            return True
        doc.error(
            key,
            f"{what} is already defined at {first.location.seen_from(doc.at(key))}; "
            "define it once or rename one of them",
        )
        return False

    # -- phase 2 -------------------------------------------------------------

    def build(self) -> Catalog:
        """The catalog; complete only if no problem was recorded (check ``problems`` first)."""
        self.definitions.build_named_formats()
        for named in (*self._templates.values(), *self._contexts.values()):
            self._read_pending(named)
        for name in self._templates:
            self._resolve(name)
        for name in self._templates:
            self._machine_of[name] = self._template_machine(name)
        templates = {name: self._template_set(name) for name in self._templates}
        specs: list[tuple[int, int, ContextSpec]] = []
        for index, (path, named) in enumerate(self._contexts.items()):
            spec = self._context(path, named)
            depth = path.count(".") + 1 if path else 0
            specs.append((depth, index, spec))
        specs.sort(key=lambda item: item[:2])
        machines = {name: read.machine for name, read in self.machines.machines.items()}
        return Catalog(templates=templates, contexts=[spec for _, _, spec in specs], state_machines=machines)

    def _template_machine(self, name: str, visiting: tuple[str, ...] = ()) -> str | None:
        """The machine a template attaches (``state_machine:``, else its includes'); None if none.
        (Bad includes were reported by _resolve: they are skipped quietly here.)"""
        named = self._templates[name]
        node = named.entries.get("state_machine")
        if node is None:
            include = named.entries.get("include")
            items = [include] if isinstance(include, ScalarNode) else getattr(include, "value", None) or []
            for item in items:
                included = getattr(item, "value", None)
                if included in self._templates and included not in visiting and included != name:
                    found = self._machine_of.get(included) or self._template_machine(
                        included, (*visiting, name)
                    )
                    if found is not None:
                        return found
            return None
        value = named.entries.text("state_machine", None)
        if not isinstance(value, str):
            return None
        if value not in self.machines.machines:
            named.doc.error(
                node,
                f"unknown state machine {value!r} in template {name!r}"
                + suggest(value, self.machines.machines, "known state machines"),
            )
            return None
        return value

    def _machine(self, name: str | None) -> StateMachine | None:
        return self.machines.machines[name].machine if name is not None else None

    def _check_machine(self, definitions: DefinitionSet, user: str) -> None:
        """Every event the set's machine is triggered by, and stateChanged, must be defined; every
        event a 'clears' names too (once per set)."""
        if id(definitions) in self._checked_sets:
            return
        self._checked_sets.add(id(definitions))
        if self.definitions.clears_at:
            check_clears(definitions, self.definitions.clears_at, self.problems, user, self.persistence)
        machine = definitions.state_machine
        if machine is not None:
            self.machines.check_events(machine.name, definitions, user)

    def _template_set(self, name: str) -> DefinitionSet:
        found = self._template_sets.get(name)
        if found is None:
            origins = self._resolved.get(name, {})
            machine = self._machine_of.get(name)
            found = DefinitionSet(
                (o.definition for o in origins.values()), name=name, state_machine=self._machine(machine)
            )
            self._template_sets[name] = found
        return found

    def _resolve(self, name: str) -> dict[str, Origin]:
        """The definitions of a template: its includes' (in order), then its own."""
        if name in self._resolved:
            return self._resolved[name]
        named = self._templates[name]
        entries = named.entries
        self._resolving.append(name)
        merged: dict[str, Origin] = {}
        try:
            for included, node in self._names(entries, "include", self._templates, "known templates"):
                if included in self._resolving:
                    cycle = " -> ".join([*self._resolving[self._resolving.index(included) :], included])
                    named.doc.error(
                        node, f"templates include each other ({cycle}); remove one of the includes"
                    )
                    continue
                self._merge(merged, self._resolve(included), named.doc, node)
            self._add_own(merged, named.events, named.doc)  # type: ignore[arg-type]
        finally:
            self._resolving.pop()
        self._resolved[name] = merged
        return merged

    def _context(self, path: str, named: _Named) -> ContextSpec:
        entries = named.entries
        description = entries.text("description", "")
        own: dict[str, Origin] = named.events  # type: ignore[assignment]
        templates = self._names(entries, "templates", self._templates, "known templates")
        definitions = self._definitions(named.doc, templates, own)
        where = f"context {display(path)!r}"
        self._check_machine(definitions, where)
        child_definitions = None
        if "child_templates" in entries:
            children = self._names(entries, "child_templates", self._templates, "known templates")
            if children:
                child_definitions = self._definitions(named.doc, children, {})
                user = f"the children of {where}"
                self._check_machine(child_definitions, user)
        return ContextSpec(
            path=path,
            description=description if isinstance(description, str) else "",
            definitions=definitions,
            child_definitions=child_definitions,
        )

    def _machine_name(self, doc: Document, templates: Sequence[tuple[str, Node]]) -> str | None:
        """The one machine of the listed templates; two different ones are reported at the second."""
        found: tuple[str, str] | None = None
        for name, node in templates:
            machine = self._machine_of.get(name)
            if machine is None:
                continue
            if found is not None and found[1] != machine:
                doc.error(
                    node,
                    f"template {name!r} attaches state machine {machine!r} but template {found[0]!r} "
                    f"already attaches {found[1]!r}; a resource has one state machine",
                )
                continue
            found = found or (name, machine)
        return found[1] if found is not None else None

    def _definitions(
        self, doc: Document, templates: Sequence[tuple[str, Node]], own: dict[str, Origin]
    ) -> DefinitionSet:
        """The set of templates + own events; shared between everyone naming the same templates only."""
        machine = self._machine(self._machine_name(doc, templates))
        key = tuple(name for name, _ in templates)
        if not own:
            if not key:
                return EMPTY_DEFINITIONS
            if len(key) == 1:
                return self._template_set(key[0])
            if key in self._shared:
                return self._shared[key]
        merged: dict[str, Origin] = {}
        for name, node in templates:
            self._merge(merged, self._resolved.get(name, {}), doc, node)
        self._add_own(merged, own, doc)
        definitions = (origin.definition for origin in merged.values())
        if own:
            return DefinitionSet(definitions, state_machine=machine)
        shared = self._shared[key] = DefinitionSet(definitions, name="+".join(key), state_machine=machine)
        return shared

    def _merge(
        self, merged: dict[str, Origin], incoming: dict[str, Origin], doc: Document, node: Node
    ) -> None:
        """Add a template's definitions; identical duplicates are fine, different ones are not."""
        for name, origin in incoming.items():
            first = merged.get(name)
            if first is None:
                merged[name] = origin
            elif first.definition != origin.definition:
                doc.error(
                    node,
                    f"event {name!r} of {origin.owner} ({origin.location}) differs from "
                    f"the one of {first.owner} ({first.location}); an event can have one "
                    "definition only: rename one or make them identical",
                )

    def _add_own(self, merged: dict[str, Origin], own: dict[str, Origin], doc: Document) -> None:
        for name, origin in own.items():
            first = merged.get(name)
            if first is None:
                merged[name] = origin
                continue
            doc.problems.add(
                origin.location,
                f"event {name!r} is already defined by {first.owner} at "
                f"{first.location.seen_from(origin.location)}; "
                "rename this one or remove it from one place",
            )

    def _events(self, doc: Document, entries: Entries, owner: str) -> dict[str, Origin | _Pending]:
        """The events under ``events``; the node is dropped from ``entries`` once read."""
        events: dict[str, Origin | _Pending] = {}
        for key, node in entries.mapping("events", f"the events of {owner}").items.values():
            try:
                origin = self._event(doc, key, node, owner)
            except FormatNotYetKnown:
                events[key.value] = _Pending(doc, key, node, owner)
                continue
            if origin is not None:
                events[key.value] = origin
        entries.drop("events")
        return events

    def _event(self, doc: Document, key: Node, node: Node, owner: str) -> Origin | None:
        definition = self.definitions.event(doc, key, node)
        self.persistence.setdefault(key.value, set())
        if definition is None:
            return None
        self.persistence[key.value].add(definition.persistent)
        return Origin(definition, doc.at(key), owner)

    def _read_pending(self, named: _Named) -> None:
        """Read the events that waited for a format defined in a later file (order kept)."""
        if not any(isinstance(item, _Pending) for item in named.events.values()):
            return
        events: dict[str, Origin | _Pending] = {}
        for name, item in named.events.items():
            if isinstance(item, _Pending):
                origin = self._event(item.doc, item.key, item.node, item.owner)
                if origin is not None:
                    events[name] = origin
            else:
                events[name] = item
        named.events = events

    def _names(
        self, entries: Entries, key: str, known: dict[str, _Named], noun: str
    ) -> list[tuple[str, Node]]:
        """A list of names (or one name) under ``key``, each known and listed once."""
        node = entries.get(key)
        if node is None:
            return []
        items = [node] if node.tag == "tag:yaml.org,2002:str" else entries.sequence(key)
        names: list[tuple[str, Node]] = []
        for item in items:
            if item.tag != "tag:yaml.org,2002:str":
                entries.error(item, f"{key!r} in {entries.where} must list names, got {describe_node(item)}")
            elif item.value not in known:
                entries.error(
                    item,
                    f"unknown template {item.value!r} in {entries.where}" + suggest(item.value, known, noun),
                )
            elif any(item.value == name for name, _ in names):
                entries.error(item, f"template {item.value!r} is listed twice in {key!r} of {entries.where}")
            else:
                names.append((item.value, item))
        return names


def context_files(paths: Iterable[Path]) -> list[Path]:
    """The YAML files of ``paths``: files as given, directories' ``*.yaml``/``*.yml`` sorted by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return files


def load_contexts(paths: Sequence[Path]) -> Catalog:
    """Load context files (or directories of them) into one catalog.

    Raises ConfigError listing every problem of every file.
    """
    problems = Problems()
    builder = CatalogBuilder(problems)
    with collection_paused():
        for path in context_files(paths):
            doc = read(path, problems)
            if doc is not None:
                builder.add(doc)
        catalog = builder.build()
    problems.raise_if_any()
    return catalog


def load_contexts_text(text: str, name: str = "<text>") -> Catalog:
    """Like :func:`load_contexts` for one file's text; messages name it ``name``."""
    problems = Problems()
    builder = CatalogBuilder(problems)
    doc = parse(name, text, problems)
    if doc is not None:
        builder.add(doc)
    catalog = builder.build()
    problems.raise_if_any()
    return catalog
