"""Node-id leases (history/nodes.py): one holder per id, reused only once a lease ran out."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from history_helpers import SQL_BACKENDS

from linkserver.core.events import MAX_NODE_ID
from linkserver.history.base import HistoryStore
from linkserver.history.nodes import NoFreeNodeId

LEASE, GRACE = 1_000, 1_000


def claim(store: HistoryStore, name: str, owner: str, now: int) -> int:
    return store.node_leases().claim(name, owner, now_ms=now, lease_ms=LEASE, grace_ms=GRACE)


def test_live_leases_get_distinct_ids_and_a_dead_one_is_reused_only_after_its_grace(
    store: HistoryStore,
) -> None:
    assert [claim(store, f"n{i}", f"o{i}", 10_000) for i in range(3)] == [0, 1, 2]
    leases = store.node_leases()
    assert leases.renew(0, "o0", 20_000) and leases.renew(2, "o2", 20_000)
    assert not leases.renew(1, "someone else", 20_000)
    # n1 stopped renewing at 11_000: still its own until the lease and the grace ran out
    assert claim(store, "n3", "o3", 11_000 + GRACE - 100) == 3
    assert claim(store, "n4", "o4", 11_000 + GRACE + 1) == 1
    assert not leases.renew(1, "o1", 30_000)  # the old holder is told it lost the id


def test_a_restarted_node_gets_its_own_id_back_and_a_released_id_is_free_at_once(
    store: HistoryStore,
) -> None:
    for i in range(3):
        claim(store, f"n{i}", f"o{i}", 10_000)
    store.node_leases().release(1, "not the owner")
    assert claim(store, "n9", "o9", 10_100) == 3
    store.node_leases().release(1, "o1")
    assert claim(store, "n9b", "o9b", 10_200) == 1  # released: no grace to wait for
    # every lease ran out: n2's name gets id 2 back, not the lowest free one
    assert claim(store, "n2", "o2-again", 50_000) == 2
    rows = {row.id: row for row in store.node_leases().all()}
    assert rows[2].owner == "o2-again" and rows[2].started_ms == 50_000


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_processes_claiming_at_once_never_share_an_id(
    backend: str, make_store: Callable[..., HistoryStore]
) -> None:
    stores = [make_store(backend) for _ in range(4)]
    got: list[int] = []
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for round in range(5):
                got.append(claim(stores[index], f"n{index}-{round}", f"o{index}-{round}", 10_000))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(got) == list(range(20))


def test_when_every_id_is_held_the_claim_says_so(store: HistoryStore) -> None:
    leases = store.node_leases()
    for i in range(MAX_NODE_ID + 1):
        assert leases._take_new(_row(i))
    with pytest.raises(NoFreeNodeId, match="all 1024 node ids are held"):
        claim(store, "late", "o-late", 10_000)


def _row(node_id: int):  # noqa: ANN202
    from linkserver.history.nodes import NodeLease

    return NodeLease(id=node_id, name=f"n{node_id}", owner=f"o{node_id}", started_ms=0, expires_ms=10**15)
