"""The engine: the fire lifecycle (DESIGN.md §3) in one place, and listening.

The lifecycle has two halves. ``Engine.fire`` resolves the context and the
definition, checks the firer's permission, builds and validates the data
table, assigns id, created, level and expiry and hands persistent events to
history; then it calls the second half, ``deliver``, which notifies every
matching subscription. Nothing is stored and nobody is notified when any
step of ``fire`` fails.

An event that arrives already fired (by another node, a bridge carrying
LinkServer events, a replay from history) skips the first half and enters
:meth:`Engine.deliver`: the same matching, the same caches, the same code
that notifies listeners of a local fire.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from datetime import UTC, timedelta
from typing import Any

from linkserver.core.builders import FastBuilder, fast_builder
from linkserver.core.catalog import Catalog
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import ContextNotFound, DataTableError, EventNotDefined, PermissionDenied
from linkserver.core.events import Event, IdGenerator
from linkserver.core.expiration import ExpirationTable
from linkserver.core.filters import Filter, parse_filter
from linkserver.core.filters.labels import bind_filter
from linkserver.core.formats import TableFormat
from linkserver.core.levels import Level, Permission
from linkserver.core.paths import ROOT, check_name, compile_mask, display, name_of
from linkserver.core.permissions import Principal
from linkserver.core.subscriptions import ALL_EVENTS, SubscriptionIndex, SubscriptionSpec
from linkserver.core.tallies import level_counters
from linkserver.core.tree import Context, ContextTree, TreeChange
from linkserver.history.base import HistoryStore
from linkserver.history.memory import MemoryHistoryStore
from linkserver.server.delivery import (
    AfterCommit,
    Delivery,
    Gap,
    Listener,
    Overflow,
    QueuedSubscription,
    Subscription,
)

log = logging.getLogger("linkserver.engine")

UTC = UTC
# Paths whose resolved fire targets are kept, per event name (see docs/performance.md).
DEFAULT_CACHE_SIZE = 50_000
CHILD_ADDED = "childAdded"
CHILD_REMOVED = "childRemoved"


class _Target:
    """Everything fire needs about one (path, event name), resolved once and cached.

    ``listeners``: (subscription, listener) of synchronous subscriptions that
    take every event (no minimum level, no filter, not durable), called
    inline. ``deliveries``: (minimum level, filter's matches or None, offer,
    durable) of the others. Both tuples are shared by every path with the
    same subscriptions, so a cached path costs a dict entry and this object.
    ``fired``: the event name's fire counters by level (Engine.fired).
    ``watched``: a durable subscription needs the commit's future.
    """

    __slots__ = (
        "context",
        "path",
        "definition",
        "build",
        "lifetime",
        "listeners",
        "deliveries",
        "fired",
        "watched",
        "name",
        "group",
        "category",
    )

    def __init__(
        self,
        context: Context,
        definition: EventDefinition,
        build: FastBuilder | None,
        lifetime: timedelta | None,
        fired: tuple[Any, ...],
        listeners: tuple[tuple[Subscription, Listener], ...],
        deliveries: tuple[tuple[Level, Callable[[Event], bool] | None, Callable[[Event], None], bool], ...],
    ) -> None:
        self.context = context
        self.path = context.path
        self.definition = definition
        self.build = build
        self.lifetime = lifetime
        self.fired = fired
        self.listeners = listeners
        self.deliveries = deliveries
        self.watched = any(durable for *_, durable in deliveries)  # someone waits for the commit
        # the event's fields from the definition, read once per fire
        self.name, self.group = definition.name, definition.group
        self.category = definition.category.value  # a plain str: filters compare exact types

    @property
    def where(self) -> str:
        return f"{self.definition.name} in {display(self.path)}"


def _split(subscriptions: Iterable[Subscription]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(inline listeners, other deliveries) for :class:`_Target`."""
    listeners, deliveries = [], []
    for s in subscriptions:
        spec = s.spec
        if type(s) is Subscription and not s.durable and spec.min_level <= Level.NONE and spec.filter is None:
            listeners.append((s, s.listener))
        else:
            matches = spec.filter.matches if spec.filter is not None else None
            deliveries.append((spec.min_level, matches, s.offer, s.durable))
    return tuple(listeners), tuple(deliveries)


class Engine:
    """Fires events and delivers them. Thread-safe: fire, listen and cancel from any thread."""

    def __init__(
        self,
        tree: ContextTree | None = None,
        *,
        history: HistoryStore | None = None,
        expiration: ExpirationTable | None = None,
        node_id: int = 0,
        default_queue_size: int = 1000,
        clock_ms: Callable[[], int] | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self.tree = tree if tree is not None else ContextTree()
        self.tree.on_change = self._tree_changed
        self.history = history if history is not None else MemoryHistoryStore()
        self.expiration = expiration if expiration is not None else ExpirationTable()
        self.default_queue_size = default_queue_size
        self._ids = IdGenerator(node_id, clock_ms)
        self._index: SubscriptionIndex[Subscription] = SubscriptionIndex(self.tree, cache_size)
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.RLock()
        # event name -> path as fired -> target; at most ``cache_size`` paths per event name
        self._targets: dict[str, dict[str, _Target]] = {}
        self.cache_size = cache_size
        # subscriptions' ids -> their (listeners, deliveries): one pair for every path they share
        self._shared: dict[tuple[int, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
        self._builders: dict[int, tuple[TableFormat, FastBuilder | None]] = {}  # by id(format)
        self._after_commit = AfterCommit()
        # Per event name, one itertools.count per level: events fired, and fires refused by
        # data-table validation. Read at scrape time (linkserver.server.metrics).
        self.fired: dict[str, tuple[Any, ...]] = {}
        self.rejected: dict[str, tuple[Any, ...]] = {}
        # Called with every event fired here (not those handed to deliver), before it is
        # stored: the cluster's publisher (server/cluster.py). Must be quick and not raise.
        self.on_fired: Callable[[Event], None] | None = None

    @property
    def node_id(self) -> int:
        """The node id in the ids of events fired here."""
        return self._ids.node_id

    def use_node_id(self, node_id: int) -> None:
        """Fire with ``node_id`` from now on (claimed from the database at start)."""
        self._ids.use_node(node_id)

    @classmethod
    def from_catalog(cls, catalog: Catalog, **kwargs: Any) -> Engine:
        return cls(ContextTree.from_catalog(catalog), **kwargs)

    # -- firing ------------------------------------------------------------

    def fire(
        self,
        path: str,
        event: str,
        data: Any = None,
        *,
        level: Level | str | int | None = None,
        author: Principal | str | None = None,
        durable: bool = False,
        timeout: float | None = None,
        stored: Callable[[Future[Event]], object] | None = None,
    ) -> Event:
        """Fire ``event`` in the context at ``path`` and return the event.

        ``author`` is a Principal whose grants are checked against the
        definition's fire permissions, or the name of a trusted in-process
        component. ``durable`` waits until a persistent event is committed.
        ``stored``, for a persistent event, is called with the future of its
        commit before fire returns, and the writer commits it without its
        usual linger: for a caller that answers once the event is stored
        without waiting for it here (a network session).
        Raises ContextNotFound, EventNotDefined, PermissionDenied,
        DataTableError or InvalidLevel; then nothing is stored or delivered.
        """
        by_path = self._targets.get(event)
        target = by_path.get(path) if by_path is not None else None
        if target is None:
            target = self._resolve(path, event)
        definition = target.definition
        if type(author) is Principal:
            if not author.may(target.path, definition.fire_permissions):
                raise PermissionDenied(
                    f"{author.name} may not fire {target.where}: it needs "
                    f"{definition.fire_permissions} there, {author.name} has "
                    f"{author.grants.level_for(target.path)}"
                )
            author_name: str | None = author.name
        else:
            author_name = author
        build = target.build
        records = build(data) if build is not None else None
        if records is None:  # beyond the fast path: coerce, or name every problem
            try:
                records = definition.format.build(data, where=target.where)
            except DataTableError:
                self._count_rejected(definition, level)
                raise
        event_level = definition.level if level is None else Level.parse(level)
        event_id, created = self._ids.next_created()
        lifetime = target.lifetime
        # id, context, name, level, created, expires, author, group, data, acks, category, display
        fired = Event(
            event_id,
            target.path,
            target.name,
            event_level,
            created,
            created + lifetime if lifetime is not None else None,
            author_name,
            target.group,
            records,
            (),
            target.category,
            definition,  # shows the event (message, labels) when someone reads it: no rendering here
        )
        tap = self.on_fired
        if tap is not None:  # before the store: the commit may follow at once
            tap(fired)
        commit: Future[Event] | None = None
        if lifetime is not None:
            # Checked: the format validated the data, so the writer encodes it off this thread.
            if durable or stored is not None or target.watched:
                commit = self.history.append(
                    fired,
                    requires_acknowledgement=definition.requires_acknowledgement,
                    checked=True,
                    waiting=durable,
                    hurry=stored is not None,
                )
            else:  # nobody waits for or watches the commit: no future to make
                self.history.store(
                    fired, requires_acknowledgement=definition.requires_acknowledgement, checked=True
                )
        self._deliver(target, fired, commit)
        next(target.fired[event_level])
        if commit is not None:
            if stored is not None:
                stored(commit)
            if durable:
                commit.result(timeout)
        return fired

    def deliver(self, event: Event, *, commit: Future[Event] | None = None) -> None:
        """Notify every matching subscription of ``event``, fired already: the second half of fire.

        For events that did not go through :meth:`fire` here: fired on
        another node, carried in by a bridge, replayed from history. Nothing
        is validated or stored again and no id is assigned; the event is
        matched and delivered exactly as a local fire's. ``commit`` is the
        future of a commit still under way (durable subscriptions wait for
        it); None means the event is stored already, or never will be.
        Raises ContextNotFound or EventNotDefined when this node's tree has no
        such context or definition (then nobody is notified).
        """
        by_path = self._targets.get(event.name)
        target = by_path.get(event.context) if by_path is not None else None
        if target is None:
            target = self._resolve(event.context, event.name)
        event.shown_by(target.definition)
        self._deliver(target, event, commit)

    def _deliver(self, target: _Target, fired: Event, commit: Future[Event] | None) -> None:
        """Notify ``target``'s subscriptions of ``fired`` (every path to listeners goes here)."""
        for subscription, listener in target.listeners:
            if subscription.active:  # cancelled while this fire was under way: no more
                try:
                    listener(fired)
                except Exception:
                    subscription.failed(fired)
                subscription.delivered += 1
                subscription.last_delivered_id = fired.id
        if target.deliveries:
            event_level = fired.level
            for min_level, matches, offer, after_commit in target.deliveries:
                if event_level < min_level or (matches is not None and not matches(fired)):
                    continue
                if after_commit and commit is not None:
                    commit.add_done_callback(self._after_commit.committed(offer, fired))
                else:
                    offer(fired)

    def watched(self, path: str, event: str) -> bool:
        """Whether some subscription would be offered ``event`` fired at ``path`` now (resolved and
        cached as a fire would); False for an unknown context or event. For a component that
        fires only when someone listens (alarmChanged)."""
        by_path = self._targets.get(event)
        target = by_path.get(path) if by_path is not None else None
        if target is None:
            try:
                target = self._resolve(path, event)
            except (ContextNotFound, EventNotDefined):
                return False
        return bool(target.listeners or target.deliveries)

    def _count_rejected(self, definition: EventDefinition, level: object) -> None:
        try:
            level = definition.level if level is None else Level.parse(level)  # type: ignore[arg-type]
        except ValueError:
            level = definition.level
        counters = self.rejected.get(definition.name)
        if counters is None:
            counters = self.rejected.setdefault(definition.name, level_counters())
        next(counters[level])  # type: ignore[index]

    def _resolve(self, path: str, event: str) -> _Target:
        with self._lock:
            context = self.tree.get(path)
            definition = context.definition(event)
            subscriptions = self._index.targets(context.path, definition)
            key = tuple(id(s) for s in subscriptions)  # reset with _shared whenever they change
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = _split(subscriptions)
            target = _Target(
                context,
                definition,
                self._fast_builder(definition),
                self.expiration.lifetime(context.path, definition),
                self.fired.setdefault(definition.name, level_counters()),
                *shared,
            )
            by_path = self._targets.setdefault(event, {})
            if len(by_path) >= self.cache_size:  # the oldest entry goes: a bounded cache
                by_path.pop(next(iter(by_path)), None)
            by_path[path] = target
            return target

    def _fast_builder(self, definition: EventDefinition) -> FastBuilder | None:
        format = definition.format
        found = self._builders.get(id(format))
        if found is None or found[0] is not format:
            found = self._builders[id(format)] = (format, fast_builder(format))
        return found[1]

    def _invalidate(self) -> None:
        self._targets = {}
        self._shared = {}

    # -- listening ---------------------------------------------------------

    def listen(
        self,
        mask: str,
        event: str,
        listener: Listener,
        *,
        filter: Filter | str | None = None,
        min_level: Level | str | int | None = None,
        principal: Principal | None = None,
        delivery: Delivery | str = Delivery.SYNC,
        overflow: Overflow | str = Overflow.BLOCK,
        queue_size: int | None = None,
        durable: bool = False,
        on_gap: Callable[[Gap], object] | None = None,
    ) -> Subscription:
        """Subscribe ``listener`` to ``event`` (or ``*``: every non-hidden event) in
        every context ``mask`` matches, now or added later.

        A string filter is parsed here, and checked against the formats of the
        definitions the subscription can match: ``data.temprature`` on a format
        without that field is a FilterError now, not a silent non-match.
        ``principal`` limits deliveries to events it may receive. ``durable``
        delivers persistent events only after they are committed.
        """
        compiled = compile_mask(mask)
        if event != ALL_EVENTS:
            check_name(event, "event name")
        if isinstance(filter, str):
            filter = parse_filter(filter)
        definitions = self._definitions_for(compiled.text, event, principal)
        if event != ALL_EVENTS and not definitions:
            raise EventNotDefined(compiled.text, event, self._event_names_for(compiled.text, principal))
        if filter is not None:
            filter = bind_filter(filter, definitions, f"{event!r} under {mask!r}")  # "down" -> 2
        spec = SubscriptionSpec(
            mask=compiled,
            event=event,
            filter=filter,
            min_level=Level.NONE if min_level is None else Level.parse(min_level),
            principal=principal,
        )
        mode = Delivery(delivery)
        subscription: Subscription
        if mode is Delivery.SYNC:
            subscription = Subscription(
                spec, listener, on_cancel=self._cancelled, on_gap=on_gap, durable=durable
            )
        else:
            subscription = QueuedSubscription(
                spec,
                listener,
                on_cancel=self._cancelled,
                on_gap=on_gap,
                durable=durable,
                queue_size=queue_size or self.default_queue_size,
                overflow=Overflow(overflow),
            )
        with self._lock:
            self._subscriptions.add(subscription)
            self._index.add(subscription)
            self._invalidate()
        return subscription

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions)

    def _cancelled(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)
            self._index.remove(subscription)
            self._invalidate()
        subscription.close()

    def _visible_contexts(self, mask: str, principal: Principal | None) -> list[Context]:
        """Contexts the mask matches that ``principal`` may observe (errors must not reveal others)."""
        return [
            context
            for context in self.tree.match(mask)
            if principal is None or principal.may(context.path, Permission.OBSERVER)
        ]

    def _definitions_for(self, mask: str, event: str, principal: Principal | None) -> list[EventDefinition]:
        """Definitions a subscription could ever match: in matching contexts and in templates."""
        visible = None if principal is None else lambda path: principal.may(path, Permission.OBSERVER)
        return self.tree.definitions_under((mask,), (event,), visible)

    def _event_names_for(self, mask: str, principal: Principal | None) -> set[str]:
        return {name for context in self._visible_contexts(mask, principal) for name in context.definitions}

    # -- the tree ----------------------------------------------------------

    def add_context(self, path: str, **kwargs: Any) -> Context:
        """Add a context (see ContextTree.add); fires childAdded in its parent."""
        return self.tree.add(path, **kwargs)

    def remove_context(self, path: str) -> tuple[str, ...]:
        """Remove a context and its subtree; fires childRemoved in its parent."""
        return self.tree.remove(path)

    def contexts_restored(self, added: Iterable[str], removed: Iterable[str]) -> None:
        """Bring subscriptions up to date with contexts changed without notification
        (the run-time tree restored at start); fires nothing."""
        with self._lock:
            for path in added:
                self._index.context_added(path)
            self._index.context_removed(tuple(removed))
            self._invalidate()

    def _tree_changed(self, change: TreeChange) -> None:
        with self._lock:
            if change.kind == "added":
                self._index.context_added(change.path)
                changed: tuple[str, ...] = (change.path,)
            else:
                self._index.context_removed(change.removed)
                changed = change.removed
            for by_path in self._targets.values():
                for path in changed:
                    by_path.pop(path, None)
        if change.elsewhere:
            # Another node made the change and fired its childAdded/childRemoved (stored once
            # there); this node's listeners get that event from it, like any event fired there.
            return
        event = CHILD_ADDED if change.kind == "added" else CHILD_REMOVED
        parent = self.tree.find(change.parent)
        if parent is not None and event in parent.definitions:
            data = {"name": name_of(change.path), "path": change.path}
            try:
                self.fire(parent.path if parent.path else ROOT, event, data, author="linkserver")
            except Exception:
                log.exception("could not fire %s for %s", event, display(change.path))

    # -- shutdown ----------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop every subscription's worker."""
        self._after_commit.close(timeout)
        for subscription in list(self._subscriptions):
            if isinstance(subscription, QueuedSubscription):
                subscription.drain_and_close(timeout)
