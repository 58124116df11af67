"""The context tree: contexts added and removed at run time, looked up by path.

The tree itself fires nothing (core does no I/O). Before a change it calls
``before_change``, which may refuse it by raising (the server records the
change durably there, so a context exists on disk before anyone can fire in
it); after the change it reports it to ``on_change``, which the engine turns
into ``childAdded`` and ``childRemoved`` events and uses to keep subscriptions
up to date.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs

from linkserver.core.catalog import EMPTY_DEFINITIONS, Catalog, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    EventNotDefined,
    InvalidName,
    TemplateNotFound,
)
from linkserver.core.paths import ROOT, compile_mask, display, name_of, parent_of, parse_path


class Context:
    """One node of the tree. Its definitions are a shared, immutable set."""

    __slots__ = ("path", "name", "parent", "children", "definitions", "child_definitions", "description")

    def __init__(
        self,
        path: str,
        parent: Context | None,
        definitions: DefinitionSet,
        child_definitions: DefinitionSet | None,
        description: str,
    ) -> None:
        self.path = path
        self.name = name_of(path) if path else "root"
        self.parent = parent
        self.children: dict[str, Context] = {}
        self.definitions = definitions
        self.child_definitions = child_definitions
        self.description = description

    def definition(self, name: str) -> EventDefinition:
        definition = self.definitions.get(name)
        if definition is None:
            raise EventNotDefined(self.path, name, self.definitions)
        return definition

    def __repr__(self) -> str:
        return (
            f"<Context {display(self.path)} ({len(self.definitions)} events, {len(self.children)} children)>"
        )


@attrs.frozen
class TreeChange:
    """Contexts added (one) or removed (the subtree, deepest first) by one call.

    ``contexts`` holds the Context objects concerned: the one added (not yet
    linked into the tree when ``before_change`` sees it), or the removed ones in
    the order of ``removed`` (still in the tree when ``before_change`` sees them).
    ``elsewhere``: another node made the change and recorded it; this tree only
    follows (nothing records it again, and the events reporting it were fired
    on that node).
    """

    kind: str  # "added" or "removed"
    path: str
    parent: str
    removed: tuple[str, ...] = ()
    contexts: tuple[Context, ...] = attrs.field(default=(), eq=False, repr=False)
    elsewhere: bool = False


class ContextTree:
    """The tree of contexts. Reads are lock-free; changes are serialised by a lock."""

    def __init__(
        self,
        root_definitions: DefinitionSet = EMPTY_DEFINITIONS,
        *,
        templates: Mapping[str, DefinitionSet] | None = None,
        root_child_definitions: DefinitionSet | None = None,
        on_change: Callable[[TreeChange], None] | None = None,
        before_change: Callable[[TreeChange], None] | None = None,
    ) -> None:
        self.templates: dict[str, DefinitionSet] = dict(templates or {})
        self.root = Context(ROOT, None, root_definitions, root_child_definitions, "The root context")
        self._index: dict[str, Context] = {ROOT: self.root}
        self._lock = threading.RLock()
        self.on_change = on_change
        self.before_change = before_change
        self.version = 0

    @classmethod
    def from_catalog(cls, catalog: Catalog, **kwargs: object) -> ContextTree:
        tree = cls(templates=catalog.templates, **kwargs)  # type: ignore[arg-type]
        for spec in catalog.contexts:
            if spec.path == ROOT:
                tree.root.definitions = spec.definitions
                tree.root.child_definitions = spec.child_definitions
                if spec.description:
                    tree.root.description = spec.description
                continue
            tree.add(
                spec.path,
                definitions=spec.definitions,
                child_definitions=spec.child_definitions,
                description=spec.description,
                create_parents=True,
                notify=False,
            )
        return tree

    @property
    def lock(self) -> threading.RLock:
        """Held while the tree changes (``before_change`` runs under it): hold it to make
        several changes, or a check and a change, with no other change in between."""
        return self._lock

    # -- reading -----------------------------------------------------------

    def find(self, path: str) -> Context | None:
        context = self._index.get(path)
        if context is None and path == "root":
            return self.root
        return context

    def get(self, path: str) -> Context:
        context = self._index.get(path)
        if context is None:
            context = self._index.get(parse_path(path))
            if context is None:
                raise ContextNotFound(path)
        return context

    def definition(self, path: str, name: str) -> EventDefinition:
        return self.get(path).definition(name)

    def __contains__(self, path: object) -> bool:
        return path in self._index

    def __len__(self) -> int:
        return len(self._index)

    def paths(self) -> list[str]:
        return list(self._index)

    def walk(self, path: str = ROOT) -> Iterator[Context]:
        """The context at ``path`` and everything below it, parents before children."""
        stack = [self.get(path)]
        while stack:
            context = stack.pop()
            yield context
            stack.extend(reversed(list(context.children.values())))

    def match(self, mask: str) -> list[Context]:
        """Every existing context the mask matches, walking only branches that can match."""
        compiled = compile_mask(mask)
        if compiled.exact_path is not None:
            found = self._index.get(compiled.exact_path)
            return [found] if found is not None else []
        result = []
        stack = [self.root]
        while stack:
            context = stack.pop()
            if not compiled.could_match_below(context.path):
                continue
            if compiled.matches(context.path):
                result.append(context)
            stack.extend(list(context.children.values()))
        result.sort(key=lambda c: c.path)
        return result

    def definitions_under(
        self,
        masks: Iterable[str] = ("**",),
        names: Iterable[str] = (),
        visible: Callable[[str], bool] | None = None,
    ) -> list[EventDefinition]:
        """The definitions events named ``names`` (none, or ``*``: every name) under ``masks``
        can ever have: those of the contexts the masks match now (that ``visible`` lets one
        see) and those of every template (contexts added later get theirs). What a filter
        for those events is checked against and its labels resolved by."""
        wanted = frozenset(names) - {"*"}
        sets = [
            context.definitions
            for mask in masks
            for context in self.match(mask)
            if visible is None or visible(context.path)
        ]
        sets.extend(self.templates.values())
        found: dict[int, EventDefinition] = {}
        for definitions in sets:
            for definition in definitions.values():
                if not wanted or definition.name in wanted:
                    found[id(definition)] = definition
        return list(found.values())

    # -- changing ----------------------------------------------------------

    def add(
        self,
        path: str,
        *,
        definitions: DefinitionSet | str | None = None,
        child_definitions: DefinitionSet | str | None = None,
        description: str = "",
        create_parents: bool = False,
        notify: bool = True,
        elsewhere: bool = False,
    ) -> Context:
        """Add a context. Without ``definitions`` it gets its parent's child definitions.

        ``definitions`` may name a template. Raises ContextExists, ContextNotFound
        (missing parent unless ``create_parents``), InvalidName or LookupError for
        TemplateNotFound; the tree is unchanged on error, and so it is when
        ``before_change`` raises (parents created on the way stay, each having
        passed ``before_change`` itself).
        """
        changes: list[TreeChange] = []
        try:
            return self._add(
                path, definitions, child_definitions, description, create_parents, changes, elsewhere
            )
        finally:
            if notify and self.on_change is not None:
                for done in changes:
                    self.on_change(done)

    def _add(
        self,
        path: str,
        definitions: DefinitionSet | str | None,
        child_definitions: DefinitionSet | str | None,
        description: str,
        create_parents: bool,
        changes: list[TreeChange],
        elsewhere: bool = False,
    ) -> Context:
        """Add one context (and its missing parents first), appending each change made to ``changes``."""
        path = parse_path(path)
        if path == ROOT:
            raise ContextExists(path)
        own = self._resolve_template(definitions)
        children = self._resolve_template(child_definitions)
        with self._lock:
            if path in self._index:
                raise ContextExists(path)
            parent_path = parent_of(path)
            assert parent_path is not None
            parent = self._index.get(parent_path)
            if parent is None:
                if not create_parents:
                    raise ContextNotFound(parent_path)
                parent = self._add(parent_path, None, None, "", True, changes, elsewhere)
            if own is None:
                own = parent.child_definitions or EMPTY_DEFINITIONS
            context = Context(path, parent, own, children, description)
            change = TreeChange("added", path, parent.path, contexts=(context,), elsewhere=elsewhere)
            if self.before_change is not None:
                self.before_change(change)
            parent.children[context.name] = context
            self._index[path] = context
            self.version += 1
        changes.append(change)
        return context

    def remove(self, path: str, *, notify: bool = True, elsewhere: bool = False) -> tuple[str, ...]:
        """Remove a context with everything below it; returns the removed paths, deepest first.

        Raises ContextNotFound or InvalidName (the root); the tree is unchanged
        on error, and so it is when ``before_change`` raises.
        """
        path = parse_path(path)
        if path == ROOT:
            raise InvalidName("the root context cannot be removed")
        with self._lock:
            context = self._index.get(path)
            if context is None:
                raise ContextNotFound(path)
            subtree = list(self.walk(path))
            subtree.reverse()
            assert context.parent is not None
            change = TreeChange(
                "removed",
                path,
                context.parent.path,
                tuple(c.path for c in subtree),
                contexts=tuple(subtree),
                elsewhere=elsewhere,
            )
            if self.before_change is not None:
                self.before_change(change)
            for gone in change.removed:
                del self._index[gone]
            del context.parent.children[context.name]
            self.version += 1
        if notify and self.on_change is not None:
            self.on_change(change)
        return change.removed

    def _resolve_template(self, value: DefinitionSet | str | None) -> DefinitionSet | None:
        if value is None or isinstance(value, DefinitionSet):
            return value
        template = self.templates.get(value)
        if template is None:
            raise TemplateNotFound(value, self.templates)
        return template
