"""The run-time tree kept in history: restored at start, every change recorded before it happens.

The YAML files build the tree a server starts from; :func:`restore` applies
over it what the tree store says was added or removed since, and
:class:`TreeRecorder` (the tree's ``before_change``) records each later change
durably before the tree changes, so an event fired in a just-added context is
never stored ahead of its context.

:class:`KnownDefinitions` answers which definition an event had, also for a
context that no longer exists: the permission needed to read a removed
context's events is never weaker than while the context lived.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import attrs

from linkserver.core.catalog import EMPTY_DEFINITIONS, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import LinkServerError
from linkserver.core.levels import Permission
from linkserver.core.paths import ROOT, display, parent_of
from linkserver.core.tree import Context, ContextTree, TreeChange
from linkserver.history.tree import StoredContext, TreeStore

log = logging.getLogger("linkserver.tree")

#: ``StoredContext.template`` of a removed context whose definitions were no
#: template (a context the files define with events of its own): a restart knows
#: them only while the files still define the context.
OWN_DEFINITIONS = ""


class UnrecordableContext(LinkServerError, ValueError):
    """A context added at run time whose definitions could not be restored after a restart."""


class KnownDefinitions:
    """The definitions of every context path this server knows: live ones from the
    tree, removed ones remembered (from the tree store's tombstones at start, and
    from the tree itself at each removal).

    For a (context, event name) known nowhere the level needed is that of the
    strictest definition of that name in any template or context file, or
    admin when no file defines the name: never weaker than it could have been.
    """

    def __init__(self, tree: ContextTree) -> None:
        """Made from the tree as the context files built it (before :func:`restore`)."""
        self.tree = tree
        self._removed: dict[str, tuple[DefinitionSet, DefinitionSet | None]] = {}
        self._lock = threading.Lock()
        sets: list[DefinitionSet] = list(tree.templates.values())
        for context in tree.walk():
            sets.append(context.definitions)
            if context.child_definitions is not None:
                sets.append(context.child_definitions)
        strictest: dict[str, Permission] = {}
        for definitions in sets:
            for definition in definitions.values():
                known = strictest.get(definition.name, Permission.NONE)
                strictest[definition.name] = max(definition.permissions, known)
        self._strictest = strictest

    def remember(self, contexts: Iterable[Context]) -> None:
        """Keep the definitions of contexts that are being removed."""
        with self._lock:
            for context in contexts:
                self._removed[context.path] = (context.definitions, context.child_definitions)

    def remember_removed(self, path: str, definitions: DefinitionSet, child: DefinitionSet | None) -> None:
        with self._lock:
            self._removed[path] = (definitions, child)

    def removed(self, path: str) -> tuple[DefinitionSet, DefinitionSet | None] | None:
        return self._removed.get(path)

    def definitions(self, context: str, name: str) -> list[EventDefinition]:
        """The definitions ``name`` had in ``context``: the live one and/or the one it had before removal."""
        found = []
        live = self.tree.find(context)
        if live is not None and (definition := live.definitions.get(name)) is not None:
            found.append(definition)
        gone = self._removed.get(context)
        if gone is not None and (definition := gone[0].get(name)) is not None:
            found.append(definition)
        return found

    def definition(self, context: str, name: str) -> EventDefinition | None:
        """The live definition, else the one the removed context had; None if unknown."""
        found = self.definitions(context, name)
        return found[0] if found else None

    def receive_level(self, context: str, name: str) -> Permission:
        """The level needed to receive (and read from history) events ``name`` of ``context``."""
        found = self.definitions(context, name)
        if found:
            return max(definition.permissions for definition in found)
        return self._strictest.get(name, Permission.ADMIN)


class TreeRecorder:
    """The tree's ``before_change``: records each change in the tree store first.

    A change the store cannot record (the database is down) raises, and the
    tree stays as it was: nothing is reported done that a restart would undo.
    """

    def __init__(
        self, tree: ContextTree, store: TreeStore, known: KnownDefinitions, node_id: int = 0
    ) -> None:
        self.tree = tree
        self.store = store
        self.known = known
        self.node_id = node_id
        #: Change numbers this recorder wrote: a node following the feed skips them.
        self.recorded: set[int] = set()

    def __call__(self, change: TreeChange) -> None:
        if change.elsewhere:  # recorded by the node that made it (restore remembered its definitions)
            return
        now = datetime.now(UTC)
        if change.kind == "added":
            (context,) = change.contexts
            rows = [self._row(context, now, removed=False)]
        else:
            rows = [self._row(context, now, removed=True) for context in change.contexts]
        last = self.store.save_contexts(rows)
        self.recorded.update(range(last - len(rows) + 1, last + 1))
        if change.kind == "removed":
            self.known.remember(change.contexts)

    def _row(self, context: Context, now: datetime, *, removed: bool) -> StoredContext:
        template = self._template_of(context, removed=removed)
        child = self._name_of(context.child_definitions)
        if context.child_definitions is not None and child is None and not removed:
            raise UnrecordableContext(
                f"context {display(context.path)}: its child definitions are not a template, so the "
                "context could not be restored after a restart; name a template instead"
            )
        return StoredContext(
            path=context.path,
            removed=removed,
            template=template,
            child_template=child,
            description=context.description,
            changed=now,
            node=self.node_id,
        )

    def _template_of(self, context: Context, *, removed: bool) -> str | None:
        parent = context.parent
        inherited = parent.child_definitions if parent is not None else None
        if context.definitions is inherited or (
            inherited is None and context.definitions is EMPTY_DEFINITIONS
        ):
            return None
        name = self._name_of(context.definitions)
        if name is not None:
            return name
        if removed:
            return OWN_DEFINITIONS  # a context from the files, with events of its own
        raise UnrecordableContext(
            f"context {display(context.path)}: its definitions are neither a template nor its "
            f"parent's child definitions, so it could not be restored after a restart; add it "
            f"with a template name (known: {', '.join(sorted(self.tree.templates)) or 'none'})"
        )

    def _name_of(self, definitions: DefinitionSet | None) -> str | None:
        if definitions is None or definitions.name is None:
            return None
        return definitions.name if self.tree.templates.get(definitions.name) is definitions else None


@attrs.frozen
class Restored:
    """What :func:`restore` changed: paths added and removed (each subtree deepest first)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    skipped: tuple[str, ...]
    seq: int


def restore(
    tree: ContextTree, rows: Iterable[StoredContext], known: KnownDefinitions, *, elsewhere: bool = False
) -> Restored:
    """Apply the stored rows over a tree built from YAML, without notifying anyone.

    ``elsewhere``: the rows are what other nodes changed since (the tree feed,
    :mod:`linkserver.server.tree_feed`); each change is made with
    ``elsewhere=True`` and notified, so subscriptions follow it, but nothing
    records it again or fires for it.

    Added paths go first, parents first; then removed ones (a context from the
    files removed at run time stays removed), their definitions remembered in
    ``known``. A context YAML defines keeps its YAML
    definitions. An added context whose parent or template no longer exists is
    skipped with a warning; its row stays, so it comes back once the context
    files define them again.
    """
    rows = list(rows)
    seq = max((row.seq for row in rows), default=0)
    added: list[str] = []
    skipped: list[str] = []
    for row in sorted((r for r in rows if not r.removed), key=lambda r: (r.path.count("."), r.seq)):
        if row.path in tree:
            continue
        parent = parent_of(row.path)
        if parent is not None and parent not in tree:
            log.warning(
                "context %s added at run time is not restored: its parent %s no longer exists",
                display(row.path),
                display(parent or ROOT),
            )
            skipped.append(row.path)
            continue
        missing = [t for t in (row.template, row.child_template) if t is not None and t not in tree.templates]
        if missing:
            log.warning(
                "context %s added at run time is not restored: the context files no longer define "
                "template %s; define it again to get the context back",
                display(row.path),
                ", ".join(repr(t) for t in missing),
            )
            skipped.append(row.path)
            continue
        tree.add(
            row.path,
            definitions=row.template,
            child_definitions=row.child_template,
            description=row.description,
            notify=elsewhere,
            elsewhere=elsewhere,
        )
        added.append(row.path)
    removed: list[str] = []
    for row in sorted((r for r in rows if r.removed), key=lambda r: (r.path.count("."), r.seq)):
        if row.path in tree:
            known.remember(tree.walk(row.path))
            removed.extend(tree.remove(row.path, notify=elsewhere, elsewhere=elsewhere))
        elif known.removed(row.path) is None:
            definitions = _definitions_of(row, tree, known)
            if definitions is not None:
                child = tree.templates.get(row.child_template) if row.child_template else None
                known.remember_removed(row.path, definitions, child)
    return Restored(tuple(added), tuple(removed), tuple(skipped), seq)


def _definitions_of(row: StoredContext, tree: ContextTree, known: KnownDefinitions) -> DefinitionSet | None:
    """The definitions a removed context had, as far as they can still be told."""
    if row.template == OWN_DEFINITIONS:
        return None
    if row.template is not None:
        return tree.templates.get(row.template)
    parent_path = parent_of(row.path)
    if parent_path is None:
        return None
    parent = tree.find(parent_path)
    if parent is not None:
        return parent.child_definitions or EMPTY_DEFINITIONS
    gone = known.removed(parent_path)
    if gone is not None:
        return gone[1] or EMPTY_DEFINITIONS
    return None
