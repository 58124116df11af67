"""Dead nodes: whether the process behind a node id is gone, and taking over its outbox.

A node's lease (:mod:`linkserver.history.nodes`) runs out ``lease`` after its
last renewal; once it also waited its grace, the node is dead: a live node
takes over the rows of its outbox (:meth:`DeadNodes.adopt_dead`) and
publishes them as its own outbound's (their events keep their node's id, so
the other nodes deliver them as the dead node's). Every live node looks now
and then (:meth:`DeadNodes.loop`); the rows move in one transaction, so a
second looker finds none left, and a node id claimed again meanwhile keeps its
rows (its new holder publishes them).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from linkserver.history.nodes import NodeLeases
    from linkserver.server.cluster_outbound import ClusterOutbound
    from linkserver.server.cluster_received import ClusterStats

log = logging.getLogger("linkserver.cluster")

OUTBOX = "~cluster"  # the outbox rows' bridge name: no configured bridge can be called so


class DeadNodes:
    """See the module doc. Without ``leases`` (no node leases in this history) nobody is ever
    known to be gone, and nothing is adopted."""

    def __init__(
        self,
        leases: NodeLeases | None,
        outbound: ClusterOutbound,
        stats: ClusterStats,
        *,
        node_id: int,
        lease_ms: int,
        grace_ms: int,
    ) -> None:
        self.leases = leases
        self.outbound = outbound
        self.stats = stats
        self.node_id = node_id
        self.lease_ms = lease_ms
        self.grace_ms = grace_ms

    def gone(self, node_id: int, origin: str | None) -> bool:
        """The process ``origin`` that fired with ``node_id`` is gone: another holds the id now, or
        its lease ran out and its grace (without leases: never known)."""
        if self.leases is None:
            return False
        now = time.time_ns() // 1_000_000
        for row in self.leases.all():
            if row.id == node_id:
                return row.owner != origin or row.expires_ms + self.grace_ms < now
        return True  # released: it stopped

    def loop(self, stop: threading.Event) -> None:
        """Look for dead nodes' outboxes every third of a lease until ``stop`` is set."""
        every = max(0.2, self.lease_ms / 3000)
        while not stop.wait(every):
            try:
                self.adopt_dead()
            except Exception as exc:  # the database is down: next time
                log.debug("cluster: looking for dead nodes' outboxes failed: %s", exc)

    def adopt_dead(self) -> int:
        """Take over the outbox rows of nodes whose lease ran out (and its grace); returns
        how many rows this node publishes now."""
        assert self.leases is not None
        now = time.time_ns() // 1_000_000
        dead = {
            row.id: row
            for row in self.leases.all()
            if row.id != self.node_id and row.expires_ms + self.grace_ms < now
        }
        moved = 0
        for node_id, count in self.leases.owed(OUTBOX, sorted(dead)).items():
            taken = self.leases.adopt(dead[node_id], OUTBOX, self.node_id)
            if taken:
                log.warning(
                    "cluster: node %s (node id %d) is gone; this node publishes the %d events it still owed",
                    dead[node_id].name,
                    node_id,
                    taken,
                )
                self.outbound.adopted(taken)
                self.stats.adopted += taken
                moved += taken
            elif count:
                log.info(
                    "cluster: node id %d was claimed again; its new holder publishes its outbox", node_id
                )
        return moved
