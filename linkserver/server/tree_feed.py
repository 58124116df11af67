"""Following the tree of other nodes: the contexts they add and remove appear here within a second.

Every tree change is recorded in the ``contexts`` table before it happens
(:class:`~linkserver.server.stored_tree.TreeRecorder`), each with the next
change number of one hole-free sequence. :class:`TreeFollower` reads the rows
after the last number it saw, every quarter of a second on a shared database
(PostgreSQL), and applies those another node wrote through the same
:func:`~linkserver.server.stored_tree.restore` that builds the tree at start,
with ``elsewhere=True``: the tree changes through ``ContextTree.add`` /
``remove``, so the engine's subscriptions by mask cover an added context
at once; the recorder does not record it a second time; and no
``childAdded``/``childRemoved`` is fired here. Those were fired, and stored,
once, by the node that made the change; listeners on other nodes receive that
event as they receive any event fired elsewhere (the cluster's bus delivers
it through ``Engine.deliver``). So each is stored once and delivered once to
each matching subscriber, whichever node it is on.

Rows this node wrote itself are skipped by change number (the recorder keeps
the numbers it wrote), not by node id, so the follower is right even when two
nodes were misconfigured with one id. An event from another node naming a
context this node has not followed yet: call :meth:`TreeFollower.catch_up`
and try again.
"""

from __future__ import annotations

import logging
import threading

from linkserver.core.errors import HistoryError
from linkserver.core.tree import ContextTree
from linkserver.history.tree import TreeStore
from linkserver.server.stored_tree import KnownDefinitions, Restored, TreeRecorder, restore

log = logging.getLogger("linkserver.tree")

FOLLOW_INTERVAL = 0.25  # seconds between two reads of the feed


class TreeFollower:
    """Applies the tree changes other nodes recorded after change number ``after``."""

    def __init__(
        self,
        tree: ContextTree,
        store: TreeStore,
        known: KnownDefinitions,
        recorder: TreeRecorder,
        *,
        after: int,
        interval: float = FOLLOW_INTERVAL,
    ) -> None:
        self.tree, self.store, self.known, self.recorder = tree, store, known, recorder
        self.seq = after
        self.interval = interval
        self.applied = 0  # changes of other nodes applied since start
        self._catching = threading.Lock()
        self._reads = 0  # feed reads begun (under _catching)
        self._read = 0  # the number of the last read that ended
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def catch_up(self) -> Restored | None:
        """Read the feed now and apply what other nodes changed; None when nothing was new.

        Raises HistoryError when the database cannot be read (nothing changes then).
        Callers that arrive together share one read: a read begun after a call arrived
        and ended since answers that call too (None), so a burst of requests for paths
        this node lacks costs the database a read or two, not one each.
        """
        wanted = self._reads + 1  # a read begun after this call came sees what it must
        with self._catching:
            if self._read >= wanted:
                return None
            self._reads += 1
            rows = self.store.load_contexts(self.seq)
            self._read = self._reads
            if not rows:
                return None
            last = rows[-1].seq
            # Under the tree's lock the recorder is not half-way through a change: every
            # number it wrote up to now is in ``recorded``.
            with self.tree.lock:
                mine = self.recorder.recorded
                theirs = [row for row in rows if row.seq not in mine]
                self.recorder.recorded = {seq for seq in mine if seq > last}
                restored = restore(self.tree, theirs, self.known, elsewhere=True)
                self.seq = max(self.seq, last)
        self.applied += len(restored.added) + len(restored.removed)
        if restored.added or restored.removed:
            log.debug(
                "tree of other nodes followed: %d contexts added, %d removed",
                len(restored.added),
                len(restored.removed),
            )
        return restored

    # -- the thread ------------------------------------------------------------------

    def start(self) -> TreeFollower:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="linkserver-tree-feed", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.catch_up()
            except HistoryError as exc:  # the database is down: the next read tries again
                if not self._failing:
                    log.warning("cannot follow the tree of other nodes: %s; retrying", exc)
                self._failing = True
                continue
            except Exception:
                log.exception("following the tree of other nodes failed; retrying")
                continue
            if self._failing:
                log.info("following the tree of other nodes again")
                self._failing = False
