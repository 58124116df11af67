"""Where users live: the ``users`` table (SQL) or a dict (memory), behind one interface.

A user row holds the password hash, the grants (mask -> permission name) and
when it was created and last changed. A removed user keeps a row marked
``removed`` (a tombstone), so the configuration's users, which seed an empty
table, do not come back at the next start once someone removed them.
``revision()`` changes with every write, so a node can notice what another
node changed without reading every row.

Every implementation passes the contract suite in ``tests/history/test_users_store.py``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs

from linkserver.core.errors import UserExists, UserNotFound
from linkserver.history.codec import micros


@attrs.frozen(kw_only=True)
class StoredUser:
    """One user as stored: ``grants`` maps a context mask to a permission name."""

    name: str
    password_hash: str | None = attrs.field(default=None, repr=False)
    grants: Mapping[str, str] = attrs.field(factory=dict)
    created: datetime
    updated: datetime
    removed: bool = False


class UserStore(abc.ABC):
    """The users of one history database. Thread-safe; every method is one short transaction."""

    @abc.abstractmethod
    def all(self) -> list[StoredUser]:
        """Every user that is not removed, by name."""

    @abc.abstractmethod
    def get(self, name: str) -> StoredUser | None:
        """The user ``name``, or None when there is none (or it was removed)."""

    @abc.abstractmethod
    def seed(self, users: Iterable[StoredUser]) -> list[str]:
        """Insert each user whose name was never stored (removed users stay removed);
        returns the names inserted."""

    @abc.abstractmethod
    def insert(self, user: StoredUser) -> None:
        """Add a new user (replacing the tombstone of a removed one); UserExists if it exists."""

    @abc.abstractmethod
    def update(self, user: StoredUser) -> None:
        """Replace the hash, grants and ``updated`` of an existing user; UserNotFound if none."""

    @abc.abstractmethod
    def remove(self, name: str, when: datetime) -> None:
        """Mark ``name`` removed (its hash and grants are erased); UserNotFound if none."""

    @abc.abstractmethod
    def revision(self) -> int:
        """A number that changes with every write of any node (compare it, do not order it)."""


def next_revision(current: int | None, when: datetime) -> int:
    """Above every revision so far and, across nodes, near the time of the write."""
    return max((current or 0) + 1, micros(when))


class MemoryUserStore(UserStore):
    """Users in a dict: for tests and the in-memory history."""

    def __init__(self) -> None:
        self._rows: dict[str, StoredUser] = {}
        self._revision = 0
        self._lock = threading.Lock()

    def all(self) -> list[StoredUser]:
        with self._lock:
            return sorted((u for u in self._rows.values() if not u.removed), key=lambda u: u.name)

    def get(self, name: str) -> StoredUser | None:
        with self._lock:
            user = self._rows.get(name)
        return user if user is not None and not user.removed else None

    def seed(self, users: Iterable[StoredUser]) -> list[str]:
        added = []
        with self._lock:
            for user in users:
                if user.name not in self._rows:
                    self._rows[user.name] = attrs.evolve(user, grants=dict(user.grants), removed=False)
                    added.append(user.name)
                    self._revision = next_revision(self._revision, user.updated)
        return added

    def insert(self, user: StoredUser) -> None:
        with self._lock:
            existing = self._rows.get(user.name)
            if existing is not None and not existing.removed:
                raise UserExists(user.name)
            self._rows[user.name] = attrs.evolve(user, grants=dict(user.grants), removed=False)
            self._revision = next_revision(self._revision, user.updated)

    def update(self, user: StoredUser) -> None:
        with self._lock:
            existing = self._rows.get(user.name)
            if existing is None or existing.removed:
                raise UserNotFound(user.name)
            self._rows[user.name] = attrs.evolve(
                existing, password_hash=user.password_hash, grants=dict(user.grants), updated=user.updated
            )
            self._revision = next_revision(self._revision, user.updated)

    def remove(self, name: str, when: datetime) -> None:
        with self._lock:
            existing = self._rows.get(name)
            if existing is None or existing.removed:
                raise UserNotFound(name)
            self._rows[name] = attrs.evolve(
                existing, password_hash=None, grants={}, updated=when, removed=True
            )
            self._revision = next_revision(self._revision, when)

    def revision(self) -> int:
        with self._lock:
            return self._revision
