"""Node ids of a cluster, leased in the history database.

Event ids carry 10 bits of node id (:mod:`linkserver.core.events`), so two
nodes on one database must never use the same id at the same time. A node
claims an id at start (:meth:`NodeLeases.claim`) and holds it with a lease it
renews (:meth:`NodeLeases.renew`, the heartbeat); it gives it back when it
stops (:meth:`NodeLeases.release`). A node killed without stopping keeps its
id until the lease ran out and then ``grace`` more milliseconds: only then
may another process take it. The grace covers a node that is alive but cut
off from the database (it cannot renew) and still handing out ids.

Claiming prefers, in order: an id the same node name held before (a
restarted node gets its id, and the outbox rows left under it, back), the
free id whose lease ran out first (a dead node's rows get drained), the
lowest id never used. Every claim is a compare-and-set (an insert of a new
key, or an update conditional on the row read), so two nodes starting at
once never get the same id; the loser tries the next candidate.

Times are each node's own clock in milliseconds since 1970: the nodes of a
cluster need synchronised clocks (NTP) anyway, as event ids are
time-ordered across them.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from linkserver.core.errors import LinkServerError
from linkserver.core.events import MAX_NODE_ID
from linkserver.history.schema import bridge_outbox, nodes

MAX_CLAIM_ATTEMPTS = 50


class NoFreeNodeId(LinkServerError, RuntimeError):
    """Every node id (0..1023) is held by a live lease."""


@attrs.frozen(kw_only=True)
class NodeLease:
    """One row of the table: who holds ``id`` and until when."""

    id: int
    name: str
    owner: str
    started_ms: int
    expires_ms: int


class NodeLeases(abc.ABC):
    """The lease table. Thread-safe; each method is one short transaction."""

    @abc.abstractmethod
    def all(self) -> list[NodeLease]:
        """Every row, lowest id first."""

    @abc.abstractmethod
    def _take_new(self, lease: NodeLease) -> bool:
        """Insert ``lease`` for an id without a row; False when another process was first."""

    @abc.abstractmethod
    def _take_over(self, old: NodeLease, lease: NodeLease) -> bool:
        """Replace row ``old`` (as read) by ``lease``; False when it changed meanwhile."""

    @abc.abstractmethod
    def renew(self, node_id: int, owner: str, expires_ms: int) -> bool:
        """Extend ``owner``'s lease of ``node_id``; False when ``owner`` does not hold it any more."""

    @abc.abstractmethod
    def release(self, node_id: int, owner: str) -> None:
        """Give ``node_id`` back at once (a clean stop); nothing if ``owner`` does not hold it."""

    def owed(self, bridge: str, node_ids: Sequence[int]) -> dict[int, int]:
        """How many outbox rows of ``bridge`` each of ``node_ids`` still has (ids without: absent)."""
        return {}

    def adopt(self, dead: NodeLease, bridge: str, node_id: int) -> int:
        """Move ``bridge``'s outbox rows of the dead node ``dead`` (as read, lease run out) to
        ``node_id``, unless ``dead`` changed meanwhile (claimed again): then 0. Returns how
        many rows moved. The memory store's outboxes are its own process's: nothing to adopt."""
        return 0

    def claim(self, name: str, owner: str, *, now_ms: int, lease_ms: int, grace_ms: int) -> int:
        """Claim a free node id for ``owner`` (see the module doc); returns it.

        Raises NoFreeNodeId when all 1024 are held; the database's errors pass through.
        """
        for _ in range(MAX_CLAIM_ATTEMPTS):
            rows = self.all()
            fresh = NodeLease(id=0, name=name, owner=owner, started_ms=now_ms, expires_ms=now_ms + lease_ms)
            free = [row for row in rows if row.expires_ms + grace_ms < now_ms]
            free.sort(key=lambda row: (row.name != name, row.expires_ms, row.id))
            if free:
                old = free[0]
                if self._take_over(old, attrs.evolve(fresh, id=old.id)):
                    return old.id
                continue
            used = {row.id for row in rows}
            unused = next((i for i in range(MAX_NODE_ID + 1) if i not in used), None)
            if unused is None:
                holders = ", ".join(f"{row.id}: {row.name}" for row in rows[:5])
                raise NoFreeNodeId(
                    f"all {MAX_NODE_ID + 1} node ids are held by live nodes ({holders}, ...); stop a node "
                    "or wait for the leases of dead ones to run out"
                )
            if self._take_new(attrs.evolve(fresh, id=unused)):
                return unused
        raise NoFreeNodeId(
            f"could not claim a node id in {MAX_CLAIM_ATTEMPTS} attempts (too many nodes starting)"
        )


class MemoryNodeLeases(NodeLeases):
    """For the memory history store: one process, so leases only matter to its tests."""

    def __init__(self) -> None:
        self._rows: dict[int, NodeLease] = {}
        self._lock = threading.Lock()

    def all(self) -> list[NodeLease]:
        with self._lock:
            return [self._rows[i] for i in sorted(self._rows)]

    def _take_new(self, lease: NodeLease) -> bool:
        with self._lock:
            if lease.id in self._rows:
                return False
            self._rows[lease.id] = lease
            return True

    def _take_over(self, old: NodeLease, lease: NodeLease) -> bool:
        with self._lock:
            if self._rows.get(old.id) != old:
                return False
            self._rows[old.id] = lease
            return True

    def renew(self, node_id: int, owner: str, expires_ms: int) -> bool:
        with self._lock:
            row = self._rows.get(node_id)
            if row is None or row.owner != owner:
                return False
            self._rows[node_id] = attrs.evolve(row, expires_ms=expires_ms)
            return True

    def release(self, node_id: int, owner: str) -> None:
        with self._lock:
            row = self._rows.get(node_id)
            if row is not None and row.owner == owner:
                self._rows[node_id] = attrs.evolve(row, expires_ms=0)


class SqlNodeLeases(NodeLeases):
    """The ``nodes`` table of a SQL history (SQLite or PostgreSQL)."""

    def __init__(
        self, engine: Callable[[], Engine], write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._engine = engine
        self._write_lock = write_lock

    def all(self) -> list[NodeLease]:
        with self._engine().connect() as conn:
            rows = conn.execute(select(nodes).order_by(nodes.c.id)).all()
        return [NodeLease(**row._mapping) for row in rows]

    def _take_new(self, lease: NodeLease) -> bool:
        try:
            with self._write_lock(), self._engine().begin() as conn:
                conn.execute(insert(nodes).values(**attrs.asdict(lease)))
        except IntegrityError:
            return False
        return True

    def _take_over(self, old: NodeLease, lease: NodeLease) -> bool:
        same = (nodes.c.id == old.id) & (nodes.c.owner == old.owner) & (nodes.c.expires_ms == old.expires_ms)
        values = attrs.asdict(lease)
        del values["id"]
        with self._write_lock(), self._engine().begin() as conn:
            return conn.execute(update(nodes).where(same).values(**values)).rowcount == 1

    def renew(self, node_id: int, owner: str, expires_ms: int) -> bool:
        mine = (nodes.c.id == node_id) & (nodes.c.owner == owner)
        with self._write_lock(), self._engine().begin() as conn:
            return conn.execute(update(nodes).where(mine).values(expires_ms=expires_ms)).rowcount == 1

    def release(self, node_id: int, owner: str) -> None:
        mine = (nodes.c.id == node_id) & (nodes.c.owner == owner)
        with self._write_lock(), self._engine().begin() as conn:
            conn.execute(update(nodes).where(mine).values(expires_ms=0))

    def owed(self, bridge: str, node_ids: Sequence[int]) -> dict[int, int]:
        if not node_ids:
            return {}
        query = (
            select(bridge_outbox.c.node, func.count())
            .where((bridge_outbox.c.bridge == bridge) & bridge_outbox.c.node.in_(list(node_ids)))
            .group_by(bridge_outbox.c.node)
        )
        with self._engine().connect() as conn:
            return {int(node): int(count) for node, count in conn.execute(query).all()}

    def adopt(self, dead: NodeLease, bridge: str, node_id: int) -> int:
        same = (
            (nodes.c.id == dead.id) & (nodes.c.owner == dead.owner) & (nodes.c.expires_ms == dead.expires_ms)
        )
        theirs = (bridge_outbox.c.bridge == bridge) & (bridge_outbox.c.node == dead.id)
        with self._write_lock(), self._engine().begin() as conn:
            # Locks the row (PostgreSQL) until the rows moved: a claim of the id waits, then
            # finds the id free and its outbox empty.
            if conn.execute(update(nodes).where(same).values(expires_ms=dead.expires_ms)).rowcount != 1:
                return 0
            return int(conn.execute(update(bridge_outbox).where(theirs).values(node=node_id)).rowcount)
