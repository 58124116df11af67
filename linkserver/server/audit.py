"""The audit trail: an ``action`` event for every change made through the API (docs/resources.md).

Each change a person or a token asks for (acknowledge, delete, purge, add or
remove a context, user and grant changes, state transitions, rule and alarm
changes) is recorded by :meth:`AuditTrail.record` as one ``action`` event in
the actor's own context ``users.NAME``: what was asked, where (the context it
is about), the target (event id, user, rule...) and the result: ``success``,
``denied`` (the actor's grants do not allow it), ``refused`` (the server
refused it: unknown, exists already, not allowed in this state) or ``failed``
(the server could not do it). The definition (contexts/users.yaml, template
``actor``) is persistent, kept a year, and readable with ``manager`` on the
actor's context, so who may not see ``users.alice`` never sees what alice did.

The network API calls this for every operation listed in its audit table
(linkserver/net/audit.py); code that changes things on an actor's behalf
elsewhere calls :meth:`AuditTrail.record` itself. Recording never raises: the
change is made (or refused) whether or not its record could be fired.
"""

from __future__ import annotations

import logging

import attrs

from linkserver.core.categories import ACTION
from linkserver.core.errors import ContextExists, HistoryUnavailable, LinkServerError, PermissionDenied
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.core.paths import display, is_valid_name
from linkserver.core.permissions import Principal
from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.audit")

USERS = "users"
SUCCESS, DENIED, REFUSED, FAILED = "success", "denied", "refused", "failed"
RESULTS = (SUCCESS, DENIED, REFUSED, FAILED)
LEVELS = {SUCCESS: Level.NOTICE, REFUSED: Level.NOTICE, DENIED: Level.WARNING, FAILED: Level.WARNING}


@attrs.frozen(kw_only=True)
class Action:
    """One change asked for: ``what`` (the operation, e.g. ``acknowledge``), ``where`` (the path of
    the context it is about; None when the actor may not know it), ``target`` (the event id, user,
    rule... it names) and ``detail`` (what it said or did, in a few words)."""

    what: str
    where: str | None = None
    target: str | None = None
    detail: str | None = None


def result_of(error: BaseException | None) -> str:
    """The result an operation that raised ``error`` (None: it succeeded) is recorded with."""
    if error is None:
        return SUCCESS
    if isinstance(error, PermissionDenied):
        return DENIED
    if isinstance(error, LinkServerError) and not isinstance(error, HistoryUnavailable):
        return REFUSED
    return FAILED


def actor_context(name: str) -> str:
    """Where the actions of ``name`` are recorded: ``users.NAME``, or ``users`` itself for an
    actor whose name is not a valid context name (a component such as ``bridge amqp``)."""
    return f"{USERS}.{name}" if is_valid_name(name) else USERS


class AuditTrail:
    """Fires the ``action`` events of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tree = engine.tree

    def record(
        self,
        actor: Principal,
        action: Action,
        error: BaseException | None = None,
        *,
        address: str | None = None,
    ) -> Event | None:
        """Fire ``action`` by ``actor`` with the result ``error`` means (None: success).

        The actor's context is added when missing (as a login does). Returns the event, or None
        when it could not be fired (no ``users`` context, or ``action`` not defined there): that
        is logged, never raised.
        """
        path = self._context_of(actor.name)
        if path is None:
            return None
        result = result_of(error)
        data = {
            "what": action.what,
            "where": display(action.where) if action.where is not None else None,
            "target": action.target,
            "result": result,
            "error": _error_text(error),
            "detail": action.detail,
            "actor": actor.name,
            "token": actor.is_component,
            "address": address,
        }
        try:
            # The server records what it did: the actor needs no fire permission of its own here.
            return self.engine.fire(path, ACTION, data, level=LEVELS[result], author=actor.name)
        except Exception:
            log.exception("could not record %s by %s (%s)", action.what, actor.name, result)
            return None

    def _context_of(self, name: str) -> str | None:
        path = actor_context(name)
        if self.tree.find(USERS) is None:
            return None
        if self.tree.find(path) is None:
            try:
                self.engine.add_context(path)
            except ContextExists:
                pass
            except LinkServerError:
                log.exception("could not add %s for the actions of %s", display(path), name)
                return None
        context = self.tree.find(path)
        if context is None or ACTION not in context.definitions:
            log.warning(
                "%s defines no %r event: the action of %s is not recorded", display(path), ACTION, name
            )
            return None
        return path


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return f"{type(error).__name__}: {error}"[:2000]
