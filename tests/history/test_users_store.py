"""The UserStore contract (the ``users`` table), run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from linkserver.core.errors import UserExists, UserNotFound
from linkserver.history.base import HistoryStore
from linkserver.history.users import StoredUser

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def user(
    name: str, *, hash_: str | None = "scrypt$x", grants: dict[str, str] | None = None, at: int = 0
) -> StoredUser:
    when = T0 + timedelta(seconds=at)
    return StoredUser(
        name=name, password_hash=hash_, grants=grants or {"**": "observer"}, created=when, updated=when
    )


def test_seed_adds_only_names_never_stored_and_removed_users_stay_removed(store: HistoryStore) -> None:
    users = store.users
    assert users.all() == [] and users.get("alice") is None
    assert users.seed([user("alice"), user("bob", grants={"devices.**": "operator"})]) == ["alice", "bob"]
    assert [u.name for u in users.all()] == ["alice", "bob"]
    bob = users.get("bob")
    assert bob is not None and dict(bob.grants) == {"devices.**": "operator"} and bob.created == T0
    users.remove("bob", T0 + timedelta(seconds=5))
    assert users.get("bob") is None and [u.name for u in users.all()] == ["alice"]
    # The configuration still lists bob and a changed alice: neither comes back nor is overwritten.
    assert users.seed([user("alice", grants={"**": "admin"}), user("bob"), user("carol")]) == ["carol"]
    alice = users.get("alice")
    assert alice is not None and dict(alice.grants) == {"**": "observer"}
    assert users.get("bob") is None


def test_insert_update_remove_and_their_errors(store: HistoryStore) -> None:
    users = store.users
    users.insert(user("dave", hash_=None))
    with pytest.raises(UserExists, match="dave"):
        users.insert(user("dave"))
    changed = user("dave", hash_="scrypt$new", grants={"**": "admin", "devices.x": "none"}, at=10)
    users.update(changed)
    stored = users.get("dave")
    assert stored is not None
    assert stored.password_hash == "scrypt$new" and dict(stored.grants) == {
        "**": "admin",
        "devices.x": "none",
    }
    assert stored.updated == T0 + timedelta(seconds=10) and stored.created == T0  # created is kept
    with pytest.raises(UserNotFound, match="erin"):
        users.update(user("erin"))
    users.remove("dave", T0 + timedelta(seconds=20))
    with pytest.raises(UserNotFound):
        users.remove("dave", T0 + timedelta(seconds=21))
    with pytest.raises(UserNotFound):
        users.update(user("dave"))
    users.insert(user("dave", hash_=None, grants={"alerts.**": "operator"}, at=30))  # a new dave
    again = users.get("dave")
    assert (
        again is not None and again.password_hash is None and dict(again.grants) == {"alerts.**": "operator"}
    )
    assert again.created == T0 + timedelta(seconds=30)


def test_every_write_changes_the_revision(store: HistoryStore) -> None:
    users = store.users
    seen = {users.revision()}
    steps: list[Callable[[], object]] = [
        lambda: users.seed([user("a")]),
        lambda: users.insert(user("b")),
        lambda: users.update(user("b", grants={"**": "admin"})),
        lambda: users.remove("a", T0),  # a write with a time before the others
        lambda: users.insert(user("a")),
    ]
    for step in steps:
        step()
        revision = users.revision()
        assert revision not in seen
        seen.add(revision)
    assert users.seed([user("a"), user("b")]) == [] and users.revision() in seen  # nothing written


def test_the_table_is_shared_by_stores_on_one_database(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is its own database")
    first, second = make_store(backend), make_store(backend)
    first.users.insert(user("shared"))
    before = second.users.revision()
    assert [u.name for u in second.users.all()] == ["shared"]
    first.users.update(user("shared", grants={"**": "admin"}))
    assert second.users.revision() != before
    stored = second.users.get("shared")
    assert stored is not None and dict(stored.grants) == {"**": "admin"}
