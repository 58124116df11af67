"""Users managed at run time: who exists, their password hashes and grants.

:class:`UserDirectory` is the server's view of the ``users`` table of the
history database. The configuration's users are the initial set: at start,
each configured user whose name the database never held is added with the
file's hash and grants; from then on the database is what counts (a user
removed at run time stays removed, and grants changed at run time are not
overwritten by the file). Every change is written to the database first,
then takes effect in this process at once, fires an event in
``users.NAME`` (``userAdded``, ``passwordChanged``, ``grantsChanged``,
``userRemoved``: who changed what, never a secret) and is told to the
listeners added with :meth:`UserDirectory.on_change` (the network API ends
the sessions a change invalidates). :meth:`UserDirectory.refresh` picks up
what another node changed in a shared database.

Managing users needs ``admin`` on the root; a user may change its own
password (the caller checks the current one first).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    GrantNotFound,
    InvalidName,
    LinkServerError,
    PermissionDenied,
    UserNotFound,
)
from linkserver.core.levels import Permission
from linkserver.core.paths import check_name, compile_mask
from linkserver.core.permissions import Grants, Principal
from linkserver.history.users import MemoryUserStore, StoredUser, UserStore
from linkserver.server.passwords import check_new_password, check_password_hash, hash_password

if TYPE_CHECKING:
    from linkserver.server.engine import Engine

log = logging.getLogger("linkserver.users")

USERS = "users"
ADDED, PASSWORD, GRANTS, REMOVED = "added", "password", "grants", "removed"
EVENTS = {ADDED: "userAdded", PASSWORD: "passwordChanged", GRANTS: "grantsChanged", REMOVED: "userRemoved"}


class InvalidPassword(LinkServerError, ValueError):
    """A password that may not be set (too short, too long, not a string)."""


@attrs.frozen(kw_only=True)
class UserChange:
    """What happened to user ``name``: ``kind`` is added, password, grants or removed;
    ``by`` who did it (None when another node did)."""

    name: str
    kind: str
    by: str | None = None


ChangeListener = Callable[[UserChange], None]


def check_grants(grants: Mapping[str, object]) -> dict[str, str]:
    """``{mask: permission name}``; InvalidName / InvalidLevel naming the bad entry."""
    checked = {}
    for mask, level in grants.items():
        if not isinstance(mask, str):
            raise InvalidName(f"a grant's mask must be a string, got {mask!r}")
        compiled = compile_mask(mask if mask != "root" else "")
        checked[compiled.text] = str(Permission.parse(level))
    return checked


def grant_records(grants: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"mask": mask or "root", "level": level} for mask, level in sorted(grants.items())]


class UserDirectory(Mapping[str, Principal]):
    """Name -> Principal of every user, kept in step with the ``users`` table.

    Until :meth:`start` it holds the configured users only (in memory).
    Thread-safe.
    """

    def __init__(
        self,
        configured: Mapping[str, Any],
        engine: Engine | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``configured``: name -> UserConfig (``password_hash``, ``grants``) of the configuration."""
        self._clock = clock or (lambda: datetime.now(UTC))
        self._engine = engine
        now = self._clock()
        self._seed = [
            StoredUser(
                name=name,
                password_hash=user.password_hash,
                grants={mask: str(level) for mask, level in user.grants.items()},
                created=now,
                updated=now,
            )
            for name, user in configured.items()
        ]
        self._store: UserStore = MemoryUserStore()
        self._store.seed(self._seed)
        self._lock = threading.RLock()
        self._listeners: list[ChangeListener] = []
        self._users: dict[str, StoredUser] = {}
        self._principals: dict[str, Principal] = {}
        self._revision: int | None = None
        self._load()

    # -- lifecycle ---------------------------------------------------------------

    def start(self, store: UserStore) -> None:
        """Use ``store`` from now on: add the configured users it never held, then read it."""
        added = store.seed(self._seed)
        if added:
            log.info("users from the configuration added to the database: %s", ", ".join(added))
        with self._lock:
            self._store = store
            self._load()
        for name in self:
            self._ensure_context(name)

    def _load(self) -> None:
        with self._lock:
            revision = self._store.revision()
            self._users = {user.name: user for user in self._store.all()}
            self._principals = {name: _principal(user) for name, user in self._users.items()}
            self._revision = revision

    def refresh(self) -> list[UserChange]:
        """Reread the store if another node changed it; returns (and tells the listeners) what changed."""
        with self._lock:
            if self._store.revision() == self._revision:
                return []
            before = self._users
            self._load()
            after = self._users
        changes = []
        for name in sorted(set(before) | set(after)):
            old, new = before.get(name), after.get(name)
            if new is None:
                changes.append(UserChange(name=name, kind=REMOVED))
            elif old is None:
                changes.append(UserChange(name=name, kind=ADDED))
            else:
                if old.password_hash != new.password_hash:
                    changes.append(UserChange(name=name, kind=PASSWORD))
                if dict(old.grants) != dict(new.grants):
                    changes.append(UserChange(name=name, kind=GRANTS))
        for change in changes:
            self._tell(change)
        return changes

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(change)`` after every change (in the thread that made it)."""
        self._listeners.append(listener)

    # -- reading -------------------------------------------------------------------

    def __getitem__(self, name: str) -> Principal:
        return self._principals[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._principals))

    def __len__(self) -> int:
        return len(self._principals)

    def password_hash(self, name: str) -> str | None:
        user = self._users.get(name)
        return user.password_hash if user is not None else None

    def stored(self, name: str) -> StoredUser:
        user = self._users.get(name)
        if user is None:
            raise UserNotFound(name)
        return user

    def describe(self, actor: Principal, name: str | None = None) -> list[dict[str, Any]]:
        """Every user (or one) as ``{name, grants, password, created, updated}``: admin only,
        except a user asking about itself."""
        if name is None or name != actor.name:
            self._check_admin(actor, "list users" if name is None else f"read user {name!r}")
        with self._lock:
            chosen = [self.stored(name)] if name is not None else sorted(self._users.values(), key=_name)
        return [
            {
                "name": user.name,
                "grants": {mask or "root": level for mask, level in user.grants.items()},
                "password": user.password_hash is not None,
                "created": user.created.isoformat(),
                "updated": user.updated.isoformat(),
            }
            for user in chosen
        ]

    # -- changes ---------------------------------------------------------------------

    def add(
        self,
        actor: Principal,
        name: str,
        *,
        password: str | None = None,
        grants: Mapping[str, object] | None = None,
    ) -> StoredUser:
        """Add user ``name`` (UserExists if it exists); without a password it logs in with
        API tokens only until one is set."""
        self._check_admin(actor, "add users")
        check_name(name, "user name")
        checked = check_grants(grants or {})
        hashed = self._hash(password) if password is not None else None
        now = self._clock()
        user = StoredUser(name=name, password_hash=hashed, grants=checked, created=now, updated=now)
        with self._lock:
            self._store.insert(user)
            self._set(user)
        self._ensure_context(name)
        self._event(
            name,
            ADDED,
            actor,
            {"grants": grant_records(checked), "password": hashed is not None},
        )
        return user

    def set_password(self, actor: Principal, name: str, password: str) -> None:
        """Set ``name``'s password. Admin, or ``name`` itself (the caller checked its current one)."""
        if actor.name != name or actor.is_component:
            self._check_admin(actor, f"change the password of {name!r}")
        hashed = self._hash(password)
        self._change(actor, name, PASSWORD, password_hash=hashed)

    def grant(self, actor: Principal, name: str, grants: Mapping[str, object]) -> dict[str, str]:
        """Add or change grants ``{mask: level}`` of ``name``; returns all its grants."""
        self._check_admin(actor, f"change the grants of {name!r}")
        checked = check_grants(grants)
        with self._lock:
            merged = {**self.stored(name).grants, **checked}
        return self._change(actor, name, GRANTS, grants=merged).grants  # type: ignore[return-value]

    def revoke(self, actor: Principal, name: str, masks: Iterable[str]) -> dict[str, str]:
        """Remove the grants of ``masks`` from ``name`` (LookupError naming one it lacks)."""
        self._check_admin(actor, f"change the grants of {name!r}")
        with self._lock:
            current = dict(self.stored(name).grants)
        for mask in masks:
            text = compile_mask(mask if mask != "root" else "").text
            if text not in current:
                held = ", ".join(m or "root" for m in current) or "none"
                raise GrantNotFound(f"user {name!r} holds no grant on {mask!r}; its grants are on: {held}")
            del current[text]
        return self._change(actor, name, GRANTS, grants=current).grants  # type: ignore[return-value]

    def remove(self, actor: Principal, name: str) -> None:
        """Remove user ``name``: it can no longer log in and its sessions end."""
        self._check_admin(actor, f"remove user {name!r}")
        if name == actor.name:
            raise PermissionDenied(f"{name} may not remove itself; another admin can")
        with self._lock:
            self.stored(name)
            self._store.remove(name, self._clock())
            self._users.pop(name, None)
            self._principals.pop(name, None)
            self._revision = self._store.revision()
        self._event(name, REMOVED, actor, {})
        if self._engine is not None and self._engine.tree.find(f"{USERS}.{name}") is not None:
            try:
                self._engine.remove_context(f"{USERS}.{name}")
            except ContextNotFound:
                pass

    def adopt_password_hash(self, name: str, password_hash: str) -> None:
        """Give ``name`` a hash it lacks (the generated admin credentials): setup, not an event."""
        with self._lock:
            user = self.stored(name)
            if user.password_hash is not None:
                return
            self._store.update(attrs.evolve(user, password_hash=password_hash, updated=self._clock()))
            self._load()

    # -- internals ---------------------------------------------------------------------

    @staticmethod
    def _check_admin(actor: Principal, what: str) -> None:
        if not actor.may("", Permission.ADMIN):
            raise PermissionDenied(
                f"{actor.name} may not {what}: that needs admin on root, "
                f"{actor.name} has {actor.grants.level_for('')}"
            )

    @staticmethod
    def _hash(password: object) -> str:
        problem = check_new_password(password)
        if problem:
            raise InvalidPassword(problem)
        assert isinstance(password, str)
        return hash_password(password)

    def _change(self, actor: Principal, name: str, kind: str, **changes: Any) -> StoredUser:
        with self._lock:
            before = self.stored(name)
            user = attrs.evolve(before, updated=self._clock(), **changes)
            self._store.update(user)
            self._set(user)
        data: dict[str, Any] = {}
        if kind == GRANTS:
            data = {
                "grants": grant_records(user.grants),
                "changes": _grant_changes(before.grants, user.grants),
            }
        self._event(name, kind, actor, data)
        return user

    def _set(self, user: StoredUser) -> None:
        self._users[user.name] = user
        self._principals[user.name] = _principal(user)
        self._revision = self._store.revision()

    def _ensure_context(self, name: str) -> None:
        engine = self._engine
        path = f"{USERS}.{name}"
        if engine is None or engine.tree.find(USERS) is None or engine.tree.find(path) is not None:
            return
        try:
            engine.add_context(path)
        except ContextExists:
            pass

    def _event(self, name: str, kind: str, actor: Principal, data: dict[str, Any]) -> None:
        self._tell(UserChange(name=name, kind=kind, by=actor.name))
        engine = self._engine
        if engine is None:
            return
        path = f"{USERS}.{name}"
        context = engine.tree.find(path)
        event = EVENTS[kind]
        if context is None or event not in context.definitions:
            return
        try:
            # The server records what it did: the actor needs no fire permission of its own here.
            engine.fire(path, event, {"username": name, "by": actor.name, **data}, author=actor.name)
        except Exception:  # the change is made; its record failing must not undo or hide it
            log.exception("could not fire %s for user %s", event, name)

    def _tell(self, change: UserChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("user change listener %r failed", listener)


def _name(user: StoredUser) -> str:
    return user.name


def _principal(user: StoredUser) -> Principal:
    return Principal(name=user.name, grants=Grants(user.grants))


def _grant_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[dict[str, Any]]:
    return [
        {"mask": mask or "root", "before": before.get(mask), "after": after.get(mask)}
        for mask in sorted(set(before) | set(after))
        if before.get(mask) != after.get(mask)
    ]


def configured_hash_problems(directory: UserDirectory) -> dict[str, str]:
    """User -> what is wrong with its stored hash, for the users whose hash cannot be used."""
    problems = {}
    for name in directory:
        encoded = directory.password_hash(name)
        problem = check_password_hash(encoded) if encoded is not None else None
        if problem:
            problems[name] = problem
    return problems
