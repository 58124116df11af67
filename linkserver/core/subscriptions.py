"""Which subscriptions an event goes to, without scanning all of them.

Subscriptions with an exact mask are indexed by their path. Wildcard masks
are matched once against every existing context when the subscription is
added, and once against each context added later; never per event. The
resulting per-(path, event name) target lists are built lazily and cached
until a subscription or the tree changes.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

import attrs

from linkserver.core.definitions import EventDefinition
from linkserver.core.filters import Filter
from linkserver.core.levels import Level, Permission
from linkserver.core.paths import Mask
from linkserver.core.permissions import Principal
from linkserver.core.tree import ContextTree

ALL_EVENTS = "*"


@attrs.frozen(kw_only=True, eq=False)
class SubscriptionSpec:
    """What a subscriber wants: mask + event name (or ``*``) + filter + minimum level.

    ``principal`` is who subscribes; events it may not receive are never
    delivered. None means a trusted in-process component that sees everything.
    ``*`` covers every event that is not hidden.
    """

    mask: Mask
    event: str = ALL_EVENTS
    filter: Filter | None = None
    min_level: Level = Level.NONE
    principal: Principal | None = None

    def wants(self, path: str, definition: EventDefinition) -> bool:
        """Static part of matching: everything but the level and the filter."""
        if self.event == ALL_EVENTS:
            if definition.hidden:
                return False
        elif self.event != definition.name:
            return False
        # Receiving needs at least observer, whatever the definition says.
        needed = max(definition.permissions, Permission.OBSERVER)
        if self.principal is not None and not self.principal.may(path, needed):
            return False
        return self.mask.matches(path)


class HasSpec:
    spec: SubscriptionSpec


S = TypeVar("S", bound=HasSpec)


class SubscriptionIndex(Generic[S]):
    """Thread-safe index of subscriptions over a context tree."""

    def __init__(self, tree: ContextTree) -> None:
        self._tree = tree
        self._lock = threading.RLock()
        self._exact: dict[str, list[S]] = {}
        self._wildcard: list[S] = []
        self._wildcard_by_path: dict[str, list[S]] = {}
        self._targets: dict[str, dict[str, tuple[S, ...]]] = {}  # path -> event name -> targets

    def __len__(self) -> int:
        return sum(len(v) for v in self._exact.values()) + len(self._wildcard)

    def add(self, subscription: S) -> None:
        mask = subscription.spec.mask
        with self._lock:
            if mask.exact_path is not None:
                self._exact.setdefault(mask.exact_path, []).append(subscription)
            else:
                self._wildcard.append(subscription)
                for context in self._tree.match(mask.text):
                    self._wildcard_by_path.setdefault(context.path, []).append(subscription)
            self._invalidate()

    def remove(self, subscription: S) -> None:
        mask = subscription.spec.mask
        with self._lock:
            if mask.exact_path is not None:
                subs = self._exact.get(mask.exact_path, [])
                if subscription in subs:
                    subs.remove(subscription)
                    if not subs:
                        del self._exact[mask.exact_path]
            elif subscription in self._wildcard:
                self._wildcard.remove(subscription)
                for path in [p for p, subs in self._wildcard_by_path.items() if subscription in subs]:
                    subs = self._wildcard_by_path[path]
                    subs.remove(subscription)
                    if not subs:
                        del self._wildcard_by_path[path]
            self._invalidate()

    def context_added(self, path: str) -> None:
        with self._lock:
            matching = [s for s in self._wildcard if s.spec.mask.matches(path)]
            if matching:
                self._wildcard_by_path[path] = matching
            # Only this path's targets change: devices joining never flush everyone's cache.
            self._targets.pop(path, None)

    def context_removed(self, paths: tuple[str, ...]) -> None:
        with self._lock:
            for path in paths:
                self._wildcard_by_path.pop(path, None)
                self._targets.pop(path, None)

    def targets(self, path: str, definition: EventDefinition) -> tuple[S, ...]:
        """The subscriptions an event of ``definition`` fired in ``path`` may go to.

        Level and filter are left to the caller: they depend on the event.
        """
        by_event = self._targets.get(path)
        found = by_event.get(definition.name) if by_event is not None else None
        if found is not None:
            return found
        with self._lock:
            candidates = self._exact.get(path, []) + self._wildcard_by_path.get(path, [])
            found = tuple(s for s in candidates if s.spec.wants(path, definition))
            self._targets.setdefault(path, {})[definition.name] = found
            return found

    def _invalidate(self) -> None:
        self._targets = {}
