"""Resources: contexts with a state machine, their current state and their transitions.

A context is a resource when its definitions carry a state machine (a template
with ``state_machine:``; see docs/resources.md). :class:`Resources` keeps each
resource's current state in memory, backed by the history database: a
transition fires ``stateChanged`` in the resource's context and its new state
is written in the same transaction as that event (history/resource_states.py),
so after a crash the state and the last stateChanged in history agree.

Transitions are requested (an action, or a target state reachable by one) or
triggered by an event fired in the resource's context (a listener on just the
event names some machine is triggered by). Transitions of one resource are
serialised in this process; an invalid one raises InvalidTransition naming
the current state and what it allows, and changes nothing.

The current state is this process's own transitions not yet committed
(:meth:`StateWrites.latest`), else the stored state. One process on its
database (memory, SQLite) keeps the stored states in memory, updated by each
commit. Several nodes on one PostgreSQL read the stored state on demand
(a transition, ``GET /resources``): another node's transition is seen as soon
as it is committed. Each state is written as a compare-and-set in its event's
transaction, so two nodes moving one resource at once cannot both win: the
loser's stateChanged is not stored, and a requested transition, which on a
shared database waits for its commit, is decided again against the state the
winner left (InvalidTransition if the request does not fit it any more).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from linkserver.core.categories import STATE_CHANGED
from linkserver.core.errors import ContextNotFound, HistoryError, LinkServerError, PermissionDenied
from linkserver.core.events import Event, node_of
from linkserver.core.levels import Permission
from linkserver.core.paths import display, parse_path
from linkserver.core.permissions import Principal
from linkserver.core.statemachines import InvalidTransition, NotAResource, StateMachine, Transition
from linkserver.core.tree import Context
from linkserver.history.base import HistoryStore
from linkserver.history.resource_states import (
    ExpectedChange,
    StaleResourceState,
    StateWrites,
    StoredState,
    open_resource_states,
)
from linkserver.server.delivery import Subscription
from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.resources")

TRANSITION_PERMISSION = Permission.OPERATOR
"""What a principal needs on a resource to request a transition."""
COMPONENT = "linkserver"
SHARED_WAIT = 30.0
"""Seconds a requested transition on a shared database waits for its commit, over all its tries,
when no timeout is given."""
ATTEMPTS = 5
"""How often a requested transition is decided again after other nodes' transitions won."""


class Resources:
    """The resources of one engine. ``start`` after history started and the tree was restored."""

    def __init__(self, engine: Engine, history: HistoryStore) -> None:
        self.engine = engine
        self.tree = engine.tree
        self.store = open_resource_states(history)
        self.writes = StateWrites(self.store, STATE_CHANGED)
        self.writes.watchers.append(self._committed)
        history.add_same_commit(self.writes)
        self.history = history
        self.shared = history.shared
        # One process on its database: the stored states, kept here (resources that left their
        # initial state). Several nodes: unused, the database is read.
        self._states: dict[str, str] = {}
        self._locks = _PathLocks()
        self._subscriptions: list[Subscription] = []
        # Checks a triggering event must pass to move a resource (the job tracker's: a job event
        # that contradicts the job it names moves nothing); each is asked once per event.
        self.checks: list[Callable[[Event], bool]] = []

    def start(self) -> None:
        # Other nodes change states in this database too: read it rather than a copy (kept as an
        # attribute: a transition asks twice, and the store's answer does not change).
        self.shared = self.history.shared
        if not self.shared:
            self._states = {path: row.state for path, row in self.store.all().items()}
        machines = self.machines()
        names = {name for machine in machines for name in machine.events}
        for name in sorted(names):
            self._subscriptions.append(self.engine.listen("**", name, self._on_event))
        if machines:
            try:
                self._subscriptions.append(self.engine.listen("**", "childRemoved", self._on_removed))
            except LinkServerError:  # no context defines childRemoved: nothing is removed with notice
                pass

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions.clear()

    def machines(self) -> list[StateMachine]:
        """Every state machine attached to some template or context of the tree."""
        found: dict[str, StateMachine] = {}
        sets = list(self.tree.templates.values())
        for context in self.tree.walk():
            sets.append(context.definitions)
            if context.child_definitions is not None:
                sets.append(context.child_definitions)
        for definitions in sets:
            machine = getattr(definitions, "state_machine", None)
            if machine is not None:
                found.setdefault(machine.name, machine)
        return list(found.values())

    # -- reading -----------------------------------------------------------

    def resource(self, path: str) -> tuple[Context, StateMachine]:
        """The context at ``path`` and its machine; NotAResource if it has none."""
        context = self.tree.get(parse_path(path))
        machine = context.definitions.state_machine
        if machine is None:
            raise NotAResource(
                f"{display(context.path)} has no state machine; resources are contexts whose "
                "template attaches one (state_machine: in the template, see docs/resources.md)"
            )
        return context, machine

    def state(self, path: str) -> str:
        """The current state of the resource at ``path``."""
        context, machine = self.resource(path)
        return self._current(context.path, machine)

    def _current(self, path: str, machine: StateMachine) -> str:
        """Where this process's own transitions took the resource, else its stored state."""
        pending = self.writes.latest(path)
        if pending is not None:
            return pending.new
        if self.shared:
            row = self.store.get(path)
            return row.state if row is not None else machine.initial
        return self._states.get(path, machine.initial)

    def _committed(self, rows: Sequence[StoredState]) -> None:
        """States committed (in the committing thread; before they stop being pending)."""
        if not self.shared:
            for row in rows:
                self._states[row.path] = row.state

    def describe(self, context: Context, stored: dict[str, str] | None = None) -> dict[str, Any] | None:
        """``{machine, state, allowed}`` of a resource context, None for another context.

        ``stored``: the stored states read for a whole listing (see :meth:`list`)."""
        machine = context.definitions.state_machine
        if machine is None:
            return None
        if stored is None:
            state = self._current(context.path, machine)
        else:
            pending = self.writes.latest(context.path)
            state = pending.new if pending is not None else stored.get(context.path, machine.initial)
        return {
            "machine": machine.name,
            "state": state,
            "allowed": [t.describe() for t in machine.allowed(state)],
            "actions": sorted({t.action for t in machine.allowed(state) if t.action is not None}),
        }

    def list(
        self, mask: str = "**", principal: Principal | None = None
    ) -> list[tuple[Context, dict[str, Any]]]:
        """Every resource ``mask`` matches (that ``principal`` may observe), by path."""
        found = []
        # One read of the stored states for the whole listing (several nodes), not one per context.
        stored = self._stored_below(_literal_prefix(mask))
        for context in self.tree.match(mask):
            if principal is not None and not principal.may(context.path, Permission.OBSERVER):
                continue
            described = self.describe(context, stored)
            if described is not None:
                found.append((context, described))
        return sorted(found, key=lambda item: item[0].path)

    def _stored_below(self, path: str) -> dict[str, str]:
        if self.shared:
            return {p: row.state for p, row in self.store.below(path).items()}
        return self._states

    # -- transitions -------------------------------------------------------

    def transition(
        self,
        path: str,
        *,
        action: str | None = None,
        to: str | None = None,
        by: Principal | str | None = None,
        cause: str | None = None,
        durable: bool = False,
        timeout: float | None = None,
    ) -> Event:
        """Request a transition by ``action`` (or to state ``to``); returns its stateChanged event.

        ``by`` is a Principal (it needs operator on the resource) or the name of a trusted
        component. Raises NotAResource, InvalidTransition (naming the current state and the
        allowed transitions) or PermissionDenied; then nothing changed.
        """
        context, machine = self.resource(path)
        if isinstance(by, Principal):
            if not by.may(context.path, TRANSITION_PERMISSION):
                raise PermissionDenied(
                    f"{by.name} may not change the state of {display(context.path)}: it needs "
                    f"{TRANSITION_PERMISSION} there, {by.name} has {by.grants.level_for(context.path)}"
                )
            actor: str | None = by.name
        else:
            actor = by
        # On a shared database the commit decides (a compare-and-set): wait for it, so that the
        # answer is the truth, and decide again when another node's transition came first.
        # The timeout bounds the whole request, every try included; only this resource's
        # other requests wait behind it meanwhile.
        wait = durable or self.shared
        if wait and timeout is None and not durable:
            timeout = SHARED_WAIT
        deadline = time.monotonic() + timeout if timeout is not None else None
        lock = self._locks.acquire(context.path)
        try:
            for attempt in range(1, ATTEMPTS + 1):
                old = self._current(context.path, machine)
                transition = machine.for_request(context.path, old, action=action, to=to)
                left = max(0.0, deadline - time.monotonic()) if deadline is not None else None
                try:
                    return self._apply(
                        context,
                        machine,
                        transition,
                        old,
                        actor,
                        cause or transition.trigger,
                        wait,
                        left,
                    )
                except TimeoutError:
                    raise TimeoutError(
                        f"history did not confirm the transition of {display(context.path)} within "
                        f"{timeout:g} s"
                    ) from None
                except HistoryError as exc:
                    if not isinstance(exc.__cause__, StaleResourceState):
                        raise
                    if attempt == ATTEMPTS:  # a conflict (409), not a server error
                        raise InvalidTransition(
                            f"{display(context.path)} was changed on another node at each of "
                            f"{ATTEMPTS} tries; read its state again and retry if the transition "
                            "still fits",
                            path=display(context.path),
                        ) from exc
                    log.info("%s moved on another node meanwhile; deciding again", display(context.path))
        finally:
            lock.release()
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _apply(
        self,
        context: Context,
        machine: StateMachine,
        transition: Transition,
        old: str,
        actor: str | None,
        cause: str,
        durable: bool = False,
        timeout: float | None = None,
    ) -> Event:
        change = ExpectedChange(
            path=context.path,
            machine=machine.name,
            old=old,
            new=transition.target,
            actor=actor,
            cause=cause,
            from_initial=old == machine.initial,
        )
        self.writes.expect(change)
        data = {"old": old, "new": transition.target, "cause": cause, "by": actor}
        try:
            event = self.engine.fire(
                context.path, STATE_CHANGED, data, author=actor or COMPONENT, durable=durable, timeout=timeout
            )
        except BaseException as exc:
            # Queued already (a commit that failed or is late): the writer forgets it or stores it.
            if not isinstance(exc, (HistoryError, TimeoutError)):
                self.writes.dropped(change)
            raise
        return event

    def _on_event(self, event: Event) -> None:
        """An event some machine is triggered by: move its resource if its machine says so."""
        if node_of(event.id) != self.engine.node_id:
            return  # fired on another node: that node moves the resource (once, not once per node)
        context = self.tree.find(event.context)
        if context is None:
            return
        machine = context.definitions.state_machine
        if machine is None or event.name not in machine.events:
            return
        # Before the resource's lock: a check may take locks of its own (and fire a warning).
        if not all(check(event) for check in self.checks):
            log.warning("%s %s in %s does not fit its job: no transition", event.name, event.id,
                        display(context.path))  # fmt: skip
            return
        lock = self._locks.acquire(context.path)
        try:
            old = self._current(context.path, machine)
            transition = machine.for_event(old, event)
            if transition is None:
                return  # the event means nothing in this state
            try:
                self._apply(context, machine, transition, old, event.author, f"event {event.name} {event.id}")
            except LinkServerError:
                log.exception("%s in %s: the transition to %s failed", event.name, display(context.path),
                              transition.target)  # fmt: skip
        finally:
            lock.release()

    def _on_removed(self, event: Event) -> None:
        path = event.record.get("path")
        if not isinstance(path, str):
            return
        prefix = path + "."

        def gone(known: str) -> bool:
            return known == path or known.startswith(prefix)

        # First its waiting changes (a context added again at once must not take them for its
        # own, nor their commits write its row), then the stored rows (after any commit under
        # way: the store waits for the write lock), then what this process kept of them.
        self.writes.void(gone)
        self._locks.forget(gone)
        try:
            self.store.forget([path])
        except Exception:  # the database is down: the rows stay, a new context starts over anyway
            log.exception("could not forget the states below removed context %s", display(path))
        for known in [p for p in self._states if gone(p)]:
            self._states.pop(known, None)

    def forget_unknown(self) -> None:
        """Drop states (and locks) of contexts that no longer exist (restored tree changed meanwhile)."""
        for path in list(self._states):
            if not self._exists(path):
                self._states.pop(path, None)
        self._locks.forget(lambda path: not self._exists(path))

    def _exists(self, path: str) -> bool:
        try:
            self.tree.get(path)
        except ContextNotFound:
            return False
        return True


def _literal_prefix(mask: str) -> str:
    """The path every context ``mask`` matches lies at or below (``devices`` for ``devices.*``)."""
    names = []
    for name in mask.split(".") if mask not in ("", "root") else ():
        if "*" in name:
            break
        names.append(name)
    return ".".join(names)


class _PathLocks:
    """One re-entrant lock per resource path: a transition waiting for its commit on a shared
    database holds up its own resource, never unrelated ones.

    A path's lock is made at its first transition and kept until :meth:`forget` (its context
    was removed), so a transition takes it with a dict lookup and nothing else: a lock made
    and dropped per call, under a guard counting its users, cost as much as the rest of the
    transition's own work."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.RLock] = {}
        self._left: set[str] = set()  # removed while held: dropped by the next forget

    def acquire(self, path: str) -> threading.RLock:
        """Take ``path``'s lock (waiting for its holder); release it when done."""
        locks = self._locks
        while True:
            lock = locks.get(path)
            if lock is None:  # setdefault is atomic: two first transitions get one lock
                lock = locks.setdefault(path, threading.RLock())
            lock.acquire()
            if locks.get(path) is lock:
                return lock
            lock.release()  # forgotten while this thread waited for it: take the path's lock now

    def forget(self, gone: Callable[[str], bool]) -> None:
        """Drop the locks of the paths ``gone`` says were removed. Only a thread holding a lock
        drops it, so no transition runs under a dropped one; one held by a transition under
        way (this very thread's too: they are re-entrant) is dropped by the next forget."""
        left, self._left = self._left, set()
        for path in [p for p in list(self._locks) if p in left or gone(p)]:
            lock = self._locks.get(path)
            if lock is None:
                continue
            if _owned(lock) or not lock.acquire(blocking=False):
                self._left.add(path)
                continue
            try:
                if self._locks.get(path) is lock:
                    del self._locks[path]
            finally:
                lock.release()

    def __len__(self) -> int:
        return len(self._locks)


def _owned(lock: threading.RLock) -> bool:
    """Whether this thread holds ``lock`` (what threading.Condition asks an RLock too)."""
    return bool(lock._is_owned())  # type: ignore[attr-defined]
