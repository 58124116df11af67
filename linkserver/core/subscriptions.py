"""Which subscriptions an event goes to, without scanning all of them.

Subscriptions with an exact mask are indexed by their path. Wildcard masks
are matched once against every existing context when the subscription is
added, and once against each context added later; never per event. The
resulting per-(path, event name) target lists are built lazily and cached
until a subscription or the tree changes, at most ``cache_size`` paths per
event name (the oldest go first). Equal lists are stored once: 100,000
devices matched by the same subscriptions share one tuple.
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

    def __init__(self, tree: ContextTree, cache_size: int = 50_000) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self._tree = tree
        self._lock = threading.RLock()
        self._exact: dict[str, list[S]] = {}
        self._wildcard: list[S] = []
        self._wildcard_by_path: dict[str, tuple[S, ...]] = {}
        self._shared: dict[tuple[int, ...], tuple[S, ...]] = {}  # equal tuples stored once
        self.cache_size = cache_size
        self._targets: dict[str, dict[str, tuple[S, ...]]] = {}  # event name -> path -> targets

    def __len__(self) -> int:
        return sum(len(v) for v in self._exact.values()) + len(self._wildcard)

    def add(self, subscription: S) -> None:
        mask = subscription.spec.mask
        with self._lock:
            if mask.exact_path is not None:
                self._exact.setdefault(mask.exact_path, []).append(subscription)
            else:
                self._wildcard.append(subscription)
                by_path = self._wildcard_by_path
                for context in self._tree.match(mask.text):
                    by_path[context.path] = self._share(by_path.get(context.path, ()) + (subscription,))
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
                by_path = self._wildcard_by_path
                for path in [p for p, subs in by_path.items() if subscription in subs]:
                    left = tuple(s for s in by_path[path] if s is not subscription)
                    if left:
                        by_path[path] = self._share(left)
                    else:
                        del by_path[path]
            self._invalidate()

    def context_added(self, path: str) -> None:
        with self._lock:
            matching = tuple(s for s in self._wildcard if s.spec.mask.matches(path))
            if matching:
                self._wildcard_by_path[path] = self._share(matching)
            # Only this path's targets change: devices joining never flush everyone's cache.
            for by_path in self._targets.values():
                by_path.pop(path, None)

    def context_removed(self, paths: tuple[str, ...]) -> None:
        with self._lock:
            for path in paths:
                self._wildcard_by_path.pop(path, None)
            for by_path in self._targets.values():
                for path in paths:
                    by_path.pop(path, None)

    def targets(self, path: str, definition: EventDefinition) -> tuple[S, ...]:
        """The subscriptions an event of ``definition`` fired in ``path`` may go to.

        Level and filter are left to the caller: they depend on the event.
        """
        by_path = self._targets.get(definition.name)
        found = by_path.get(path) if by_path is not None else None
        if found is not None:
            return found
        with self._lock:
            candidates = (*self._exact.get(path, ()), *self._wildcard_by_path.get(path, ()))
            found = self._share(tuple(s for s in candidates if s.spec.wants(path, definition)))
            by_path = self._targets.setdefault(definition.name, {})
            if len(by_path) >= self.cache_size:
                by_path.pop(next(iter(by_path)), None)
            by_path[path] = found
            return found

    def _share(self, subscriptions: tuple[S, ...]) -> tuple[S, ...]:
        """One stored tuple for equal tuples of subscriptions (lock held)."""
        return self._shared.setdefault(tuple(id(s) for s in subscriptions), subscriptions)

    def _invalidate(self) -> None:
        self._targets = {}
        # _wildcard_by_path still holds tuples registered here: keep those, drop the rest.
        kept = {id(t): t for t in self._wildcard_by_path.values()}
        self._shared = {tuple(id(s) for s in t): t for t in kept.values()}
