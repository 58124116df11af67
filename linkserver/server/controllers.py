"""Device controllers: plugins that drive devices and fire events in their contexts.

A controller is anything with ``start(handle)`` and ``stop()``; it is loaded
from a ``module:attribute`` path in the configuration and built with the
configured options as keyword arguments.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    DeviceOwned,
    LinkServerError,
    PermissionDenied,
)
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.core.paths import display
from linkserver.devices.bookkeeping import DEVICES, DeviceBookkeeping
from linkserver.history.device_owners import DeviceOwnerTable, OwnerRow
from linkserver.typing import DeviceController, DeviceHandle

__all__ = [
    "DEVICES",
    "ControllerError",
    "DeviceBookkeeping",
    "DeviceController",
    "DeviceHandle",
    "DeviceOwners",
    "LocalDeviceHandle",
    "Owner",
    "add_owned_device",
    "load_controller",
    "remove_owned",
]

if TYPE_CHECKING:
    from linkserver.core.permissions import Principal
    from linkserver.core.tree import ContextTree
    from linkserver.server.engine import Engine
    from linkserver.server.resources import Resources


class ControllerError(LinkServerError, RuntimeError):
    """A device controller could not be loaded or started."""


@attrs.frozen
class Owner:
    """Who drives a device context: a controller in this process (``principal`` None) or a
    remote one, known by its name and the user or token it connects as."""

    controller: str
    principal: str | None = None

    def __str__(self) -> str:
        where = "in-process" if self.principal is None else f"remote, connected as {self.principal!r}"
        return f"device controller {self.controller!r} ({where})"


class DeviceOwners:
    """Which controller owns which device context, for one running server.

    A controller owns the device contexts it added or adopted until it
    removes them; another controller can neither adopt nor remove them, and
    a context with an owned context below it is removed only by that owner.
    An entry whose context was removed some other way is forgotten.

    Kept in memory; with :meth:`share` also in the history database, so that
    the nodes of a cluster agree: a device owned through one node cannot be
    adopted through another. There an in-process controller is the same owner
    only on the same node; a remote one (known by its name and user) is the
    same owner through any node, so it can reconnect elsewhere. The owner of
    a row claimed on a node that is gone (``alive(node)`` False) or on this
    node before a restart no longer counts.
    """

    def __init__(self, tree: ContextTree) -> None:
        self._tree = tree
        self._owners: dict[str, Owner] = {}
        self._lock = threading.Lock()
        self._table: DeviceOwnerTable | None = None
        self._node: Callable[[], int] = lambda: 0
        self._alive: Callable[[int], bool] = lambda node: True

    def share(
        self, table: DeviceOwnerTable, node: Callable[[], int], alive: Callable[[int], bool] | None = None
    ) -> None:
        """Keep owners in ``table`` too, claimed as node ``node()``; ``alive(node id)`` says
        whether another node's claims still count (default: always). Rows this node claimed
        before (it starts again) are dropped."""
        table.delete_node(node())
        with self._lock:
            self._table, self._node = table, node
            if alive is not None:
                self._alive = alive

    def owner_of(self, path: str) -> Owner | None:
        with self._lock:
            local = self._live(path)
        if local is not None or self._table is None:
            return local
        row = self._table.get(path)
        if row is None or not self._counts(row):
            return None
        return Owner(row.controller, row.principal)

    def claim(self, path: str, owner: Owner) -> None:
        """Make ``owner`` the owner of the (existing) ``path``; DeviceOwned if another owns it."""
        with self._lock:
            current = self._live(path)
            if current is not None and current != owner:
                raise self._owned(path, str(current), owner)
        if self._table is not None:
            self._claim_shared(path, owner)
        with self._lock:
            self._owners[path] = owner

    def _claim_shared(self, path: str, owner: Owner) -> None:
        table, node = self._table, self._node()
        assert table is not None
        mine = OwnerRow(
            path=path, controller=owner.controller, principal=owner.principal, node=node, claimed=_now()
        )
        for _ in range(5):  # compare-and-set: another node may write between the read and the write
            row = table.get(path)
            if row is not None:
                if row == mine:
                    return
                if self._counts(row) and not self._same(row, owner):
                    where = f"{Owner(row.controller, row.principal)} on node {row.node}"
                    raise self._owned(path, where, owner)
            if table.put(mine, row):
                return
        raise DeviceOwned(f"device context {display(path)!r} is being claimed by another node; try again")

    def check_removal(self, path: str, by: Owner | None) -> None:
        """DeviceOwned unless every owned context at or below ``path`` is ``by``'s."""
        prefix = path + "." if path else ""
        with self._lock:
            for owned in list(self._owners):
                if owned != path and not owned.startswith(prefix):
                    continue
                owner = self._live(owned)
                if owner is not None and owner != by:
                    raise self._refused(owned, str(owner), path, by)
        if self._table is None:
            return
        for row in self._table.under(path):
            if self._counts(row) and (by is None or not self._same(row, by)):
                where = f"{Owner(row.controller, row.principal)} on node {row.node}"
                raise self._refused(row.path, where, path, by)

    def release(self, paths: Iterable[str]) -> None:
        paths = list(paths)
        with self._lock:
            for path in paths:
                self._owners.pop(path, None)
        if self._table is not None:
            self._table.delete(paths, self._node())

    def _live(self, path: str) -> Owner | None:
        owner = self._owners.get(path)
        if owner is not None and self._tree.find(path) is None:
            del self._owners[path]
            return None
        return owner

    def _counts(self, row: OwnerRow) -> bool:
        """Whether a shared row's owner still owns its context."""
        if self._tree.find(row.path) is None:
            return False
        if row.node == self._node():  # this node knows its own owners
            with self._lock:
                return self._live(row.path) is not None
        return self._alive(row.node)

    def _same(self, row: OwnerRow, owner: Owner) -> bool:
        if (row.controller, row.principal) != (owner.controller, owner.principal):
            return False
        return owner.principal is not None or row.node == self._node()

    @staticmethod
    def _owned(path: str, current: str, owner: Owner) -> DeviceOwned:
        return DeviceOwned(
            f"device context {display(path)!r} belongs to {current}; {owner} may not take it "
            "over: give this controller's devices other names, or stop the other controller"
        )

    @staticmethod
    def _refused(owned: str, current: str, path: str, by: Owner | None) -> DeviceOwned:
        who = "this caller" if by is None else str(by)
        return DeviceOwned(
            f"device context {display(owned)!r} belongs to {current}; {who} may not remove "
            f"{display(path)!r}: only that controller removes its devices (it does when it stops)"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def add_owned_device(
    engine: Engine,
    owners: DeviceOwners,
    owner: Owner,
    path: str,
    *,
    template: str | None = None,
    description: str = "",
    adopt: bool = True,
) -> bool:
    """Add ``path`` for ``owner``, or with ``adopt`` take an existing one that no other owns.

    Returns True when an existing context was adopted. Raises DeviceOwned
    when another controller owns it, ContextExists when it exists and not
    ``adopt``.
    """
    current = owners.owner_of(path)
    if current is not None and current != owner:
        owners.claim(path, owner)  # raises DeviceOwned naming the owner
    if engine.tree.find(path) is not None:
        if not adopt:
            raise ContextExists(path)
        owners.claim(path, owner)
        return True
    try:
        engine.add_context(path, definitions=template, description=description)
    except ContextExists:
        if not adopt:
            raise
    owners.claim(path, owner)
    return False


def remove_owned(engine: Engine, owners: DeviceOwners, path: str, by: Owner | None) -> tuple[str, ...]:
    """Remove ``path`` and its subtree unless a context in it belongs to another controller."""
    owners.check_removal(path, by)
    removed = engine.remove_context(path)
    owners.release(removed)
    return removed


class LocalDeviceHandle(DeviceBookkeeping):
    """The in-process :class:`DeviceHandle`: works directly on the engine.

    Its devices belong to it (see :class:`DeviceOwners`): adding one that
    exists adopts it unless another controller owns it (DeviceOwned).

    Its events are authored by the controller's name (trusted in-process
    code), or with ``principal`` by that user of ``users``, whose grants are
    checked on every fire as for a remote controller that logs in: for a
    controller that fires what outside devices send (MQTT).
    """

    def __init__(
        self,
        engine: Engine,
        controller: str,
        root: str = DEVICES,
        *,
        owners: DeviceOwners | None = None,
        principal: str | None = None,
        users: Mapping[str, Principal] | None = None,
        resources: Resources | None = None,
    ) -> None:
        super().__init__(controller, root)
        self._engine = engine
        self._resources = resources
        self.owners = owners if owners is not None else DeviceOwners(engine.tree)
        self.owner = Owner(controller)
        if principal is not None and (users is None or principal not in users):
            raise ControllerError(
                f"device controller {controller!r} fires as user {principal!r}, who does not exist: "
                "add the user (linkserver user add) or change 'principal'"
            )
        self.principal = principal
        self._users = users

    def add_device(self, device: str, *, template: str | None = None, description: str = "") -> str:
        """Add the device's context (with the ``devices`` child definitions unless a template is named).

        A context that exists already is adopted (the run-time tree survives a
        crash, so a controller starting again finds its devices still there),
        unless another controller owns it: DeviceOwned.
        """
        path = self.path(device)
        if self._engine.tree.find(self.root) is None:
            raise ContextNotFound(self.root)
        add_owned_device(
            self._engine, self.owners, self.owner, path, template=template, description=description
        )
        self._added(device)
        return path

    def remove_device(self, device: str) -> None:
        remove_owned(self._engine, self.owners, self.path(device), self.owner)
        self._removed(device)

    def fire(
        self,
        device: str,
        event: str,
        data: Any = None,
        *,
        level: Level | str | None = None,
        durable: bool = False,
    ) -> Event:
        return self._engine.fire(
            self.path(device), event, data, level=level, author=self._author(), durable=durable
        )

    def transition(self, device: str, action: str | None = None, *, to: str | None = None) -> Event:
        if self._resources is None:
            raise ControllerError(f"controller {self.controller} has no state machines to drive (no server)")
        return self._resources.transition(self.path(device), action=action, to=to, by=self._author())

    def _author(self) -> Principal | str:
        if self.principal is None:
            return self.controller
        assert self._users is not None
        try:
            return self._users[self.principal]  # looked up each time: grants change at run time
        except KeyError:
            raise PermissionDenied(
                f"device controller {self.controller!r} fires as user {self.principal!r}, "
                "who was removed: add the user again or change 'principal'"
            ) from None


def load_controller(target: str, options: Mapping[str, Any]) -> DeviceController:
    """Import ``module:attribute`` and call it with ``options`` as keyword arguments."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ControllerError(f"controller {target!r} must be written as 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ControllerError(f"cannot import controller module {module_name!r}: {exc}") from exc
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ControllerError(f"module {module_name!r} has no {attribute!r} (from controller {target!r})")
    try:
        controller = factory(**dict(options))
    except (TypeError, ValueError) as exc:
        raise ControllerError(f"controller {target!r} rejected its options {dict(options)!r}: {exc}") from exc
    if not isinstance(controller, DeviceController):
        raise ControllerError(f"{target!r} made {controller!r}, which lacks start(handle) and stop()")
    return controller
