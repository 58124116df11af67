"""The TokenTable contract (the ``api_tokens`` table), run against memory, SQLite and
PostgreSQL; and API tokens shared by two nodes through it (linkserver/net/tokens.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from linkserver.history.api_tokens import StoredToken
from linkserver.history.base import HistoryStore
from linkserver.net.tokens import (
    TOKENS_FILE,
    ApiTokens,
    create_token,
    import_token_file,
    list_tokens,
    revoke_token,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_tokens_are_put_replaced_listed_and_removed(store: HistoryStore) -> None:
    table = store.api_tokens
    assert table.all() == []
    plant = StoredToken(name="plant", digest="sha256:aa", grants={"devices.**": "admin"}, created=T0)
    table.put(plant)
    table.put(StoredToken(name="alpha", digest="sha256:bb", created=T0, expires=T0 + timedelta(days=1)))
    assert [token.name for token in table.all()] == ["alpha", "plant"]
    assert table.all()[1] == plant
    replaced = StoredToken(name="plant", digest="sha256:cc", grants={"alerts.**": "operator"}, created=T0)
    table.put(replaced)
    assert table.all()[1] == replaced
    assert table.add_missing([plant, StoredToken(name="new", digest="sha256:dd", created=T0)]) == ["new"]
    assert {token.name: token for token in table.all()}["plant"] == replaced  # a taken name keeps its token
    assert table.remove("plant") and not table.remove("plant")
    assert [token.name for token in table.all()] == ["alpha", "new"]
    assert table.all()[0].expires == T0 + timedelta(days=1)


def test_a_token_made_on_one_node_works_on_the_other_at_once_and_a_revoke_within_a_look(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is its own database")
    first, second = make_store(backend), make_store(backend)
    on_b = ApiTokens(second.api_tokens)
    assert on_b.resolve("plant.nothing") is None
    token = create_token(first.api_tokens, "plant", {"devices.**": "operator"})
    time.sleep(ApiTokens.MISS_REREAD)  # misses reread at most this often (guessers cost no more)
    principal = on_b.resolve(token)  # unknown here: B rereads at once
    assert principal is not None and principal.name == "plant" and principal.is_component
    assert on_b.resolve("plant.wrong-secret") is None
    assert revoke_token(first.api_tokens, "plant")
    assert on_b.changed()  # what B's watcher does twice a second
    assert on_b.resolve(token) is None
    assert not on_b.changed()


def test_expired_tokens_are_refused(store: HistoryStore) -> None:
    now = [datetime.now(UTC)]
    tokens = ApiTokens(store.api_tokens, clock=lambda: now[0])
    token = create_token(store.api_tokens, "short", {"**": "observer"}, timedelta(seconds=10))
    assert tokens.resolve(token) is not None
    now[0] += timedelta(seconds=11)
    assert tokens.resolve(token) is None


def test_an_older_tokens_file_is_moved_into_the_table(store: HistoryStore, tmp_path: Path) -> None:
    made = create_token(store.api_tokens, "kept", {"**": "observer"})
    document = {
        "tokens": {
            "kept": {"hash": "sha256:other", "grants": {}, "created": T0.isoformat(), "expires": None},
            "plc": {
                "hash": "sha256:" + "0" * 64,
                "grants": {"devices.**": "operator"},
                "created": T0.isoformat(),
                "expires": (T0 + timedelta(days=90)).isoformat(),
            },
        }
    }
    (tmp_path / TOKENS_FILE).write_text(json.dumps(document))
    assert import_token_file(tmp_path, store.api_tokens) == ["plc"]
    assert not (tmp_path / TOKENS_FILE).exists() and (tmp_path / f"{TOKENS_FILE}.imported").exists()
    assert list_tokens(store.api_tokens)["plc"] == {
        "grants": {"devices.**": "operator"},
        "created": T0.isoformat(),
        "expires": (T0 + timedelta(days=90)).isoformat(),
    }
    assert ApiTokens(store.api_tokens).resolve(made) is not None  # the table's own "kept" stays
    assert import_token_file(tmp_path, store.api_tokens) == []  # nothing left to move


def test_a_history_in_memory_reads_the_tokens_file_at_each_start_and_keeps_it(tmp_path: Path) -> None:
    from linkserver.history.memory import MemoryHistoryStore

    document = {"tokens": {"plc": {"hash": "sha256:" + "0" * 64, "grants": {}, "created": T0.isoformat()}}}
    (tmp_path / TOKENS_FILE).write_text(json.dumps(document))
    for _ in range(2):  # two starts
        table = MemoryHistoryStore().api_tokens
        assert import_token_file(tmp_path, table, keep_file=True) == ["plc"]
        assert (tmp_path / TOKENS_FILE).exists()
