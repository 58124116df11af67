"""This node's id, leased from the history database and kept by a heartbeat.

:meth:`NodeIdLease.start` claims an id (:mod:`linkserver.history.nodes`); a
thread renews the lease every third of its length. A renewal the database
cannot take (it is down) is tried again at the next beat and said once; a
renewal refused because another process holds the id now (this node was cut
off from the database for longer than the lease and its grace) claims a new
id and tells ``on_change``, so the engine never fires with an id another live
node uses. :meth:`NodeIdLease.stop` gives the id back for the next start.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from linkserver.history.nodes import NodeLeases

log = logging.getLogger("linkserver.cluster")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class NodeIdLease:
    """The node id of one process (see the module doc). ``grace`` defaults to the lease."""

    def __init__(
        self,
        leases: NodeLeases,
        name: str,
        lease: timedelta,
        *,
        on_change: Callable[[int], None] | None = None,
        grace: timedelta | None = None,
    ) -> None:
        self.leases = leases
        self.name = name
        self.owner = f"{name}/{uuid.uuid4().hex}"
        self.lease_ms = max(1, int(lease.total_seconds() * 1000))
        self.grace_ms = int((grace if grace is not None else lease).total_seconds() * 1000)
        self.on_change = on_change
        self.node_id: int | None = None
        self.renewed_ms = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> int:
        """Claim an id and start the heartbeat; returns the id (NoFreeNodeId: none is free)."""
        self.node_id = self._claim()
        self._thread = threading.Thread(target=self._run, name="linkserver-node-lease", daemon=True)
        self._thread.start()
        return self.node_id

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.node_id is not None:
            try:
                self.leases.release(self.node_id, self.owner)
            except Exception as exc:  # the lease runs out by itself
                log.warning(
                    "could not give node id %d back (%s); it is free once its lease ran out",
                    self.node_id,
                    exc,
                )

    def _claim(self) -> int:
        started = now_ms()
        node_id = self.leases.claim(
            self.name, self.owner, now_ms=started, lease_ms=self.lease_ms, grace_ms=self.grace_ms
        )
        self.renewed_ms = started
        log.info("node %s holds node id %d (lease %.0f s)", self.name, node_id, self.lease_ms / 1000)
        return node_id

    def _run(self) -> None:
        every = self.lease_ms / 3000
        while not self._stop.wait(every):
            self.beat()

    def beat(self) -> None:
        """Renew the lease once (the heartbeat thread calls it; tests may too)."""
        assert self.node_id is not None
        moment = now_ms()
        try:
            held = self.leases.renew(self.node_id, self.owner, moment + self.lease_ms)
            if not held:
                old = self.node_id
                self.node_id = self._claim()
                log.error(
                    "node %s lost node id %d (cut off from the database for %.0f s, longer than its "
                    "lease); it fires with node id %d from now on",
                    self.name,
                    old,
                    (moment - self.renewed_ms) / 1000,
                    self.node_id,
                )
                if self.on_change is not None:
                    self.on_change(self.node_id)
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "node %s cannot renew the lease of node id %d (%s); trying again every %.0f s",
                    self.name,
                    self.node_id,
                    exc,
                    self.lease_ms / 3000,
                )
            self._failing = True
            return
        if self._failing:
            log.info("node %s renews the lease of node id %d again", self.name, self.node_id)
            self._failing = False
        self.renewed_ms = moment
