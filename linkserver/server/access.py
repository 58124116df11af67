"""History operations on behalf of a user, checked against the user's grants.

On history: observer reads, operator acknowledges, manager deletes, engineer
purges. A user never learns anything about events they may not receive: an
event they may not see is reported exactly like one that does not exist.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import EventNotFound, HistoryUnavailable, LinkServerError, PermissionDenied
from linkserver.core.events import Acknowledgement, Event
from linkserver.core.filters import Filter
from linkserver.core.filters.labels import bind_filter
from linkserver.core.levels import Permission
from linkserver.core.paths import display
from linkserver.core.permissions import Principal
from linkserver.core.tree import ContextTree
from linkserver.history.base import HistoryPage, HistoryQuery, HistoryStore
from linkserver.server.stored_tree import KnownDefinitions

PURGE_WAIT = 30.0  # seconds a manual purge waits for another node's purge to end


class EmptyAcknowledgement(LinkServerError, ValueError):
    """An acknowledgement without text."""


def in_field_order(records: Iterable[dict[str, Any]], names: tuple[str, ...]) -> None:
    """Put each record's keys in its format's field order (in place: the records were just
    read from the store), keys the format does not name after them. So a table shows the
    fields as they are defined, whatever order the database kept them in."""
    for record in records:
        keys = tuple(record)
        if keys == names or len(keys) < 2:
            continue
        ordered = {name: record[name] for name in names if name in record}
        if len(ordered) < len(record):
            ordered.update(record)
        record.clear()
        record.update(ordered)


class HistoryAccess:
    """Permission-checked reads and writes of history for one tree and store."""

    def __init__(self, tree: ContextTree, store: HistoryStore, known: KnownDefinitions | None = None) -> None:
        self.tree = tree
        self.store = store
        self.known = known if known is not None else KnownDefinitions(tree)

    def receive_level(self, context: str, name: str) -> Permission:
        """The level needed to see events ``name`` of ``context``: that of its definition,
        live or (for a removed context) as it was; see :class:`KnownDefinitions`.
        Never weaker than while the context lived."""
        return self.known.receive_level(context, name)

    def may_see(self, user: Principal | None, context: str, name: str) -> bool:
        return user is None or user.may(context, max(self.receive_level(context, name), Permission.OBSERVER))

    def query(self, query: HistoryQuery, user: Principal | None) -> HistoryPage:
        """One page of what ``user`` may see; FilterError when the filter reads a data field
        no event the query can match has (checked as subscriptions are)."""
        query = self._with_labels(query, user)
        page = self.store.query(self._restricted(query, user))
        self.show(page.events)
        return page

    def show(self, events: Iterable[Event]) -> None:
        """Give each event read from the store its definition to show it by (message, labels):
        the live one, else the one its removed context had (see KnownDefinitions)."""
        found: dict[tuple[str, str], EventDefinition | None] = {}
        reorder = not self.store.keeps_field_order
        for event in events:
            if event.display is None:
                key = (event.context, event.name)
                if key not in found:
                    found[key] = self.known.definition(*key)
                definition = found[key]
                event.shown_by(definition)
                if reorder and definition is not None and event.data:
                    in_field_order(event.data, definition.format.field_names)

    def instructions(self, event: Event) -> str:
        """The operator instructions of ``event``'s definition ("" when it has none)."""
        definition = self.known.definition(event.context, event.name)
        return definition.instructions if definition is not None else ""

    def count(self, query: HistoryQuery, user: Principal | None) -> int:
        query = self._with_labels(query, user)
        return self.store.count(self._restricted(query, user))

    def _with_labels(self, query: HistoryQuery, user: Principal | None) -> HistoryQuery:
        """``query`` with its filter checked and its value labels resolved (:meth:`bound_filter`)."""
        if query.filter is None:
            return query
        bound = self.bound_filter(query.filter, query.masks, query.names, user)
        return query if bound is query.filter else attrs.evolve(query, filter=bound)

    def bound_filter(
        self, filter: Filter, masks: Iterable[str], names: Iterable[str], user: Principal | None
    ) -> Filter:
        """``filter`` fitted to the events of ``names`` (none: every one) under ``masks`` that
        ``user`` may observe (core.filters.labels.bind_filter): FilterError when it fits no
        definition of them, so a typo (``data.valu``) is an error instead of an empty answer;
        else the filter with its value labels resolved."""
        if not filter.data_fields():
            return filter
        masks, names = tuple(masks) or ("**",), tuple(names)
        visible = None if user is None else lambda path: user.may(path, Permission.OBSERVER)
        found = self.tree.definitions_under(masks, names, visible)
        what = (
            f"{' or '.join(repr(n) for n in names) or repr('*')} under {' or '.join(repr(m) for m in masks)}"
        )
        return bind_filter(filter, found, what)

    def check_filter(self, query: HistoryQuery, user: Principal | None) -> None:
        """Raise FilterError unless the query's filter fits the format of some definition in
        the contexts its masks match (that ``user`` may observe) or in a template."""
        if query.filter is not None:
            self.bound_filter(query.filter, query.masks, query.names, user)

    def get(self, event_id: int, user: Principal | None) -> Event:
        event = self.store.get(event_id)
        if not self.may_see(user, event.context, event.name):
            raise EventNotFound(event_id)
        self.show((event,))
        return event

    def acknowledge(self, event_id: int, user: Principal, text: str, *, now: datetime | None = None) -> Event:
        """Add an acknowledgement; needs operator on the event's context."""
        if not isinstance(text, str) or not text.strip():
            raise EmptyAcknowledgement(
                f"acknowledgement of event {event_id} has no text; say what was done about it"
            )
        event = self.get(event_id, user)
        self._require(user, event, Permission.OPERATOR, "acknowledge")
        ack = Acknowledgement(time=now or datetime.now(UTC), user=user.name, text=text.strip())
        acknowledged = self.store.acknowledge(event_id, ack)
        self.show((acknowledged,))
        return acknowledged

    def delete(self, event_id: int, user: Principal) -> None:
        """Delete one event; needs manager on the event's context."""
        event = self.get(event_id, user)
        self._require(user, event, Permission.MANAGER, "delete")
        self.store.delete(event_id)

    def purge(self, user: Principal, *, now: datetime | None = None, batch_size: int = 5000) -> int:
        """Purge expired events now; needs engineer on the root context."""
        if not user.may("", Permission.ENGINEER):
            raise PermissionDenied(f"{user.name} may not purge history: it needs engineer on root")
        deadline = time.monotonic() + PURGE_WAIT
        while True:  # one purge at a time on a database: wait for another node's to finish
            with self.store.exclusive("purge") as held:
                if held:
                    return self.store.purge_expired(now or datetime.now(UTC), batch_size)
            if time.monotonic() >= deadline:
                raise HistoryUnavailable(
                    f"another node has been purging this history for over {PURGE_WAIT:.0f} s; "
                    "its purge removes the same events: try again later"
                )
            time.sleep(0.1)

    def _restricted(self, query: HistoryQuery, user: Principal | None) -> HistoryQuery:
        if user is None:
            return query
        return attrs.evolve(query, visible=lambda context, name: self.may_see(user, context, name))

    @staticmethod
    def _require(user: Principal, event: Event, needed: Permission, action: str) -> None:
        if not user.may(event.context, needed):
            raise PermissionDenied(
                f"{user.name} may not {action} event {event.id} in {display(event.context)}: "
                f"it needs {needed} there, {user.name} has {user.grants.level_for(event.context)}"
            )
