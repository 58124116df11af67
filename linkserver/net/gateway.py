"""The server's actions on behalf of a principal, checked against its grants.

The HTTP routes and the WebSocket sessions both go through :class:`Gateway`.
A user never learns anything about a context they hold no grant in or
below: such a context answers exactly like a missing one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import attrs

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    EventNotDefined,
    HistoryUnavailable,
    LinkServerError,
    PermissionDenied,
)
from linkserver.core.events import Event, id_time
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Permission
from linkserver.core.paths import check_name, display, parent_of, parse_path
from linkserver.core.permissions import Principal
from linkserver.core.tree import Context
from linkserver.history.base import HistoryPage, HistoryQuery
from linkserver.net import codec
from linkserver.net.codec import FireRequest
from linkserver.net.protocol import SubscribeRequest
from linkserver.net.push import deferred_wakes
from linkserver.server.app import LinkServer
from linkserver.server.controllers import Owner, add_owned_device, remove_owned
from linkserver.server.delivery import Subscription

log = logging.getLogger("linkserver.net")

OBSERVER = Permission.OBSERVER


class Gateway:
    """The server's actions on behalf of a principal, checked against its grants."""

    def __init__(self, server: LinkServer, *, durable_timeout: float = 5.0) -> None:
        self.server = server
        # Below the clients' request timeout (10 s), so that a durable fire the database cannot
        # confirm is answered HistoryUnavailable (503) instead of looking like a lost server.
        self.durable_timeout = durable_timeout
        self.engine = server.engine
        self.tree = server.tree

    # -- what a principal may see ------------------------------------------------

    @staticmethod
    def may_see(principal: Principal, context: Context) -> bool:
        """Some grant of at least observer at or below the context."""
        return principal.grants.may_see_below(context.path)

    @staticmethod
    def may_see_definition(principal: Principal, context: Context, definition: EventDefinition) -> bool:
        level = principal.grants.level_for(context.path)
        return level >= OBSERVER and (level >= definition.permissions or level >= definition.fire_permissions)

    def context(self, principal: Principal, path: str) -> Context:
        """The context at ``path``; ContextNotFound also when the principal may not see it."""
        context = self.server.find_context(parse_path(path))  # also one just added on another node
        if context is None or not self.may_see(principal, context):
            raise ContextNotFound(path)
        return context

    def definitions(self, principal: Principal, context: Context) -> list[EventDefinition]:
        return [d for d in context.definitions.values() if self.may_see_definition(principal, context, d)]

    # -- firing ------------------------------------------------------------------

    def fire(self, principal: Principal, request: FireRequest, *, durable: bool = False) -> Event:
        context = self._fire_context(principal, request)
        if not durable:
            with deferred_wakes():  # the sessions' loop is woken once, after every offer
                return self.engine.fire(
                    context.path, request.event, request.data, level=request.level, author=principal
                )
        try:
            return self.engine.fire(
                context.path,
                request.event,
                request.data,
                level=request.level,
                author=principal,
                durable=durable,
                timeout=self.durable_timeout if durable else None,
            )
        except TimeoutError:
            raise HistoryUnavailable(
                f"{request.event} in {display(context.path)} was fired but history did not confirm "
                f"it within {self.durable_timeout:g} s (is the database reachable?): it is not "
                "confirmed durable; retry, or look for it in history once the database is back"
            ) from None

    def submit(self, principal: Principal, request: FireRequest) -> tuple[Event, Future[Event] | None]:
        """:meth:`fire` without waiting: the event and, for a persistent one, the future of
        its commit, which the writer makes without its linger (``stored`` of Engine.fire)."""
        context = self._fire_context(principal, request)
        commit: list[Future[Event]] = []
        with deferred_wakes():  # the sessions' loop is woken once, after every offer
            event = self.engine.fire(
                context.path,
                request.event,
                request.data,
                level=request.level,
                author=principal,
                stored=commit.append,
            )
        return event, commit[0] if commit else None

    def _fire_context(self, principal: Principal, request: FireRequest) -> Context:
        """The context to fire in; EventNotDefined also for an event the principal may not see."""
        context = self.context(principal, request.context)
        definition = context.definitions.get(request.event)
        if definition is None or not self.may_see_definition(principal, context, definition):
            raise EventNotDefined(
                context.path, request.event, [d.name for d in self.definitions(principal, context)]
            )
        return context

    def fire_many(
        self, principal: Principal, requests: list[FireRequest | LinkServerError], *, durable: bool = False
    ) -> list[Event | LinkServerError]:
        """Fire each in order; one failing does not stop the others. ``durable`` waits once at the end."""
        results: list[Event | LinkServerError] = []
        for request in requests:
            if isinstance(request, LinkServerError):
                results.append(request)
                continue
            try:
                results.append(self.fire(principal, request))
            except LinkServerError as exc:
                results.append(exc)
        if durable and any(isinstance(r, Event) for r in results):
            try:
                self.server.history.flush(self.durable_timeout)
            except TimeoutError:
                fired = sum(isinstance(r, Event) for r in results)
                raise HistoryUnavailable(
                    f"{fired} events of the batch were fired but history did not confirm them within "
                    f"{self.durable_timeout:g} s (is the database reachable?): they are not confirmed "
                    "durable; retry, or look for them in history once the database is back"
                ) from None
        return results

    # -- subscribing and history -------------------------------------------------

    def subscribe(
        self, principal: Principal, request: SubscribeRequest, listener: Callable[[Event], None]
    ) -> Subscription:
        # The engine delivers only what ``principal`` may receive (at least observer there).
        try:
            return self.engine.listen(
                request.mask,
                request.event,
                listener,
                filter=request.filter,
                min_level=request.min_level,
                principal=principal,
            )
        except EventNotDefined:
            visible = {
                d.name
                for c in self.tree.match(request.mask)
                if self.may_see(principal, c)
                for d in self.definitions(principal, c)
            }
            raise EventNotDefined(request.mask, request.event, visible) from None

    def replay(
        self, principal: Principal, request: SubscribeRequest, after_id: int, cursor: str | None, limit: int
    ) -> HistoryPage:
        query = HistoryQuery(
            masks=(request.mask,),
            names=(request.event,) if request.event != "*" else (),
            min_level=request.min_level,
            filter=parse_filter(request.filter) if request.filter else None,
            since=id_time(after_id),
            newest_first=False,
            limit=limit,
            cursor=cursor,
        )
        page = self.server.access.query(query, principal)
        if request.event != "*":
            return page
        return attrs.evolve(page, events=tuple(e for e in page.events if not self._hidden(e)))

    def _hidden(self, event: Event) -> bool:
        context = self.tree.find(event.context)
        definition = context.definitions.get(event.name) if context is not None else None
        return definition is not None and definition.hidden

    def flush(self) -> None:
        self.server.history.flush(30)

    # -- the tree --------------------------------------------------------------------

    def tree_json(self, principal: Principal, path: str, depth: int | None) -> dict[str, Any]:
        start = self.context(principal, path)
        level = principal.grants.level_for
        return codec.tree_json(
            start, lambda c: self.may_see(principal, c), depth, lambda c: level(c.path) >= OBSERVER
        )

    def context_json(self, principal: Principal, path: str) -> dict[str, Any]:
        context = self.context(principal, path)
        shown = principal.grants.level_for(context.path) >= OBSERVER
        return {
            "path": context.path,
            "name": context.name,
            "description": context.description if shown else "",
            "children": sorted(c.name for c in context.children.values() if self.may_see(principal, c)),
            "events": [
                codec.definition_json(d, self.engine.expiration.explain(context.path, d))
                for d in self.definitions(principal, context)
            ],
        }

    def add_context(
        self,
        principal: Principal,
        path: str,
        template: str | None,
        description: str,
        controller: str | None = None,
        adopt: bool = False,
    ) -> Context:
        """Add a context; with ``controller`` it is a device that controller owns (see
        DeviceOwners), and with ``adopt`` an existing one no other controller owns is taken over."""
        path = parse_path(path)
        parent_path = parent_of(path)
        if parent_path is None:
            raise ContextExists(path)
        parent = self.context(principal, display(parent_path))
        if not principal.may(parent.path, Permission.ADMIN):
            raise PermissionDenied(
                f"{principal.name} may not add contexts to {display(parent.path)}: "
                f"it needs admin there, {principal.name} has "
                f"{principal.grants.level_for(parent.path)}"
            )
        if controller is None:
            return self.engine.add_context(path, definitions=template, description=description)
        check_name(controller, "controller name")
        owner = Owner(controller, principal.name)
        add_owned_device(
            self.engine,
            self.server.device_owners,
            owner,
            path,
            template=template,
            description=description,
            adopt=adopt,
        )
        return self.tree.get(path)

    def remove_context(
        self, principal: Principal, path: str, controller: str | None = None
    ) -> tuple[str, ...]:
        """Remove a context and its subtree; refused (DeviceOwned) while a device in it belongs to
        a controller other than ``controller`` of this principal."""
        context = self.context(principal, path)
        if not principal.may(context.path, Permission.ADMIN):
            raise PermissionDenied(
                f"{principal.name} may not remove {display(context.path)}: it needs admin "
                f"there, {principal.name} has {principal.grants.level_for(context.path)}"
            )
        by = Owner(check_name(controller, "controller name"), principal.name) if controller else None
        return remove_owned(self.engine, self.server.device_owners, context.path, by)

    # -- sessions ----------------------------------------------------------------------

    def user_event(self, user: str, event: str, data: dict[str, Any]) -> None:
        """Fire ``login``/``logout`` in ``users.USER``, adding that context when it is missing."""
        path = f"users.{user}"
        if self.tree.find("users") is None:
            return
        if self.tree.find(path) is None:
            try:
                self.engine.add_context(path)
            except ContextExists:
                pass
        context = self.tree.find(path)
        if context is not None and event in context.definitions:
            self.engine.fire(path, event, data, author=user)
