"""The LinkServer object: core, history, scheduler and plugins wired together.

``LinkServer(config, catalog)`` builds everything; ``start()`` opens history,
restores the run-time tree kept there over the tree the context files built
(from then on every tree change is recorded before it happens), fires
``serverStarted``, starts the purge scheduler and the device
controllers; ``stop()`` undoes it in reverse order and flushes history, so
nothing the server said it stored is lost.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

from linkserver import __version__
from linkserver.core.catalog import Catalog
from linkserver.core.errors import HistoryError, LinkServerError
from linkserver.core.events import Event
from linkserver.core.permissions import Principal
from linkserver.core.tree import Context, ContextTree
from linkserver.history.base import HistoryStore
from linkserver.history.memory import MemoryHistoryStore
from linkserver.loading.check import load_all
from linkserver.loading.config import ServerConfig
from linkserver.server.access import HistoryAccess
from linkserver.server.alarms import Alarms
from linkserver.server.audit import AuditTrail
from linkserver.server.bridge_host import BridgeError, BridgeHost, load_bridge, select_entries
from linkserver.server.cluster import Cluster
from linkserver.server.controllers import (
    DeviceController,
    DeviceHandle,
    DeviceOwners,
    LocalDeviceHandle,
    load_controller,
)
from linkserver.server.delivery import Subscription
from linkserver.server.engine import Engine
from linkserver.server.jobs import JobTracker
from linkserver.server.node_id import NodeIdLease
from linkserver.server.purge import PurgeScheduler
from linkserver.server.resources import Resources
from linkserver.server.rules import RuleHost, rules_of
from linkserver.server.stored_tree import KnownDefinitions, TreeRecorder, restore
from linkserver.server.tree_feed import TreeFollower
from linkserver.server.users import UserDirectory
from linkserver.typing import Bridge

log = logging.getLogger("linkserver.server")

MEMORY_URL = "memory://"
SHUTDOWN_TIMEOUT = 30.0  # seconds to wait for history at shutdown before giving up


class DataDirectoryBusy(LinkServerError, RuntimeError):
    """Another server already runs on the same data directory."""


class LinkServer:
    """One node: the engine, its history, the purge job and the device controllers."""

    def __init__(
        self, config: ServerConfig, catalog: Catalog, *, history: HistoryStore | None = None
    ) -> None:
        self.config = config
        self.history = history if history is not None else self.open_history(config)
        self.engine = Engine(
            ContextTree.from_catalog(catalog),
            history=self.history,
            expiration=config.expiration,
            node_id=config.node_id,
            default_queue_size=config.delivery_queue_size,
        )
        self.tree = self.engine.tree
        self.known = KnownDefinitions(self.tree)
        self.access = HistoryAccess(self.tree, self.history, self.known)
        self.purger = PurgeScheduler(
            self.history, interval=config.purge_interval, batch_size=config.purge_batch_size
        )
        self.controllers: list[tuple[str, DeviceController, DeviceHandle]] = []
        self.bridges: list[BridgeHost] = []
        # The configured users until start, then those of the history database (server/users.py).
        self.users = UserDirectory(config.users, self.engine)
        self.device_owners = DeviceOwners(self.tree)  # which controller drives which device
        self.resources = Resources(self.engine, self.history)  # state machines (server/resources.py)
        self.jobs = JobTracker(self.engine, self.history)  # job events and hanging jobs (server/jobs.py)
        self.alarms = Alarms(self.engine, self.history, self.access, config.sections.get("alarms"))
        self.purger.also.append(("cleared alarms", self.alarms.purge))  # the alarm list (server/alarms.py)
        self.purger.jobs.append(("alarm auto_clear", self.alarms.settings.sweep_interval, self.alarms.sweep))
        removal = self.alarms.settings.removal_interval  # keep_cleared honoured within that
        self.purger.jobs.append(("cleared alarm removal", removal, self.alarms.remove_cleared))
        self.rules = RuleHost(self.engine, self.history, rules_of(config))  # alert rules (server/rules.py)
        self.rules.alarms = self.alarms.store  # escalations of the alarm list (source: alarms)
        self.resources.checks.append(self.jobs.fits)  # a job event out of order moves no resource
        self.audit = AuditTrail(self.engine)  # action events: the audit trail (server/audit.py)
        # Applies the tree changes of other nodes on a shared database (server/tree_feed.py).
        self.tree_follower: TreeFollower | None = None
        self._lock_file: IO[str] | None = None
        # The node id: the configured one, or with a cluster: section the one claimed at start.
        self.node_id = config.node_id
        self.node_lease: NodeIdLease | None = None
        self.cluster: Cluster | None = None  # with a cluster: section, from start to stop
        self._state_lock = threading.Lock()
        self.running = False

    @classmethod
    def from_config_file(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> LinkServer:
        """Load a config file and the context files it names; raises ConfigError listing every problem."""
        config, catalog = load_all(Path(path) if path is not None else None)
        return cls(config, catalog, **kwargs)

    @staticmethod
    def open_history(config: ServerConfig) -> HistoryStore:
        """The history store ``config`` names, not started (the server's, or a tool's such as
        ``linkserver token``)."""
        if config.database_url == MEMORY_URL:
            return MemoryHistoryStore()
        from linkserver.history.sql import SqlHistoryStore

        return SqlHistoryStore(
            config.database_url,
            batch_size=config.writer_batch_size,
            flush_interval=config.writer_flush_interval,
            queue_size=config.writer_queue_size,
            durability=config.history_durability,
        )

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> LinkServer:
        with self._state_lock:
            if self.running:
                return self
            self._lock_data_directory()
            try:
                self.history.start()
                self._claim_node_id()
                self._restore_tree()
                if self.history.shared:  # other nodes see which controller owns which device
                    self.device_owners.share(
                        self.history.device_owners, lambda: self.node_id, self._node_alive
                    )
                self.resources.start()
                self.jobs.start()
                self.alarms.start()
                self.rules.start()
                self.running = True
                self.users.start(self.history.users)
                self._start_cluster()
                self._start_bridges()
                self._fire_root("serverStarted", {"version": __version__, "node_id": self.node_id})
                self.purger.start()
                for controller_config in self.config.controllers:
                    self._start_controller(
                        controller_config.name,
                        controller_config.target,
                        controller_config.options,
                        principal=controller_config.principal,
                    )
            except BaseException:
                self._shutdown("start failed")
                raise
        log.info("LinkServer %s started; data in %s", __version__, self.config.data_dir)
        return self

    def stop(self, reason: str = "stopped") -> None:
        with self._state_lock:
            if self.running:
                self._shutdown(reason)

    def _shutdown(self, reason: str) -> None:
        for name, controller, handle in reversed(self.controllers):
            try:
                controller.stop()
            except Exception:
                log.exception("device controller %s failed to stop", name)
            handle.remove_all()
        self.controllers.clear()
        if self.tree_follower is not None:
            self.tree_follower.stop()
        self.purger.stop()
        self.rules.stop()
        self.alarms.stop()
        self.jobs.stop()
        self.resources.stop()
        if self.running:
            try:
                self._fire_root("serverStopping", {"reason": reason}, durable=True, timeout=SHUTDOWN_TIMEOUT)
            except Exception:  # history unreachable: stopping must still finish
                log.exception("could not record serverStopping")
        if self.cluster is not None:  # what it does not publish now stays in the outbox
            self.cluster.stop()
            self.cluster = None
        for host in reversed(self.bridges):  # what they do not publish now stays in the outbox
            host.stop()
        self.bridges.clear()
        self.engine.close()
        # A database that stays down must not keep the process from exiting on SIGTERM.
        if self.node_lease is not None:  # ids are time-ordered: a later holder cannot repeat ours
            self.node_lease.stop()
            self.node_lease = None
        self.history.stop(timeout=SHUTDOWN_TIMEOUT)
        self.running = False
        self._unlock_data_directory()
        log.info("LinkServer stopped (%s)", reason)

    def __enter__(self) -> LinkServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _claim_node_id(self) -> None:
        """With a ``cluster:`` section, claim a node id from the database (server/node_id.py)."""
        cluster = self.config.sections.get("cluster")
        if cluster is None:
            return
        lease = NodeIdLease(
            self.history.node_leases(), cluster.node_name, cluster.lease, on_change=self._node_id_changed
        )
        self.node_id = lease.start()
        self.node_lease = lease
        self.engine.use_node_id(self.node_id)

    def _start_cluster(self) -> None:
        settings = self.config.sections.get("cluster")
        if settings is None or self.node_lease is None:
            return
        self.cluster = Cluster(
            self.engine,
            self.history,
            settings,
            node_id=self.node_id,
            owner=self.node_lease.owner,
            leases=self.node_lease.leases,
            catch_up=self._catch_up_tree,
        )
        self.cluster.start()

    def _catch_up_tree(self) -> None:
        if self.tree_follower is not None:
            self.tree_follower.catch_up()

    def find_context(self, path: str) -> Context | None:
        """The context at ``path``; None when there is none.

        On a database other nodes share, a path this node's tree lacks is first
        looked for in the tree's change feed: a context whose add has returned on
        another node is found here at once, not up to a quarter second later, so a
        client whose requests a load balancer spreads over the nodes finds what it
        added. (Misses arriving together share one read; the database unreachable: the tree as it is.)
        """
        context = self.tree.find(path)
        if context is not None or self.tree_follower is None or not self.history.shared:
            return context
        try:
            self.tree_follower.catch_up()
        except HistoryError as exc:
            log.debug("the tree's change feed could not be read for %s: %s", path, exc)
            return None
        return self.tree.find(path)

    def _node_alive(self, node: int) -> bool:
        """Whether node id ``node`` is held by a live node: with a ``cluster:`` section, its lease
        (and its grace) has not run out; with node ids set by hand there is no telling, so yes."""
        lease = self.node_lease
        if lease is None:
            return True
        now = time.time_ns() // 1_000_000
        return any(held.id == node and held.expires_ms + lease.grace_ms > now for held in lease.leases.all())

    def _node_id_changed(self, node_id: int) -> None:
        self.node_id = node_id
        self.engine.use_node_id(node_id)

    def _restore_tree(self) -> None:
        """Apply what history says was added or removed at run time, then record every change."""
        restored = restore(self.tree, self.history.load_contexts(), self.known)
        self.engine.contexts_restored(restored.added, restored.removed)
        recorder = TreeRecorder(self.tree, self.history, self.known, self.node_id)
        self.tree.before_change = recorder
        self.tree_follower = TreeFollower(self.tree, self.history, self.known, recorder, after=restored.seq)
        if self.history.shared:
            self.tree_follower.start()
        if restored.added or restored.removed or restored.skipped:
            log.info(
                "run-time tree restored: %d contexts added, %d removed, %d not restored (see warnings)",
                len(restored.added),
                len(restored.removed),
                len(restored.skipped),
            )

    def _fire_root(
        self, event: str, data: dict[str, Any], *, durable: bool = False, timeout: float | None = None
    ) -> None:
        if event in self.tree.root.definitions:
            self.engine.fire("", event, data, author="linkserver", durable=durable, timeout=timeout)

    def _start_controller(
        self, name: str, target: str, options: dict[str, Any], *, principal: str | None = None
    ) -> None:
        controller = load_controller(target, options)
        self.add_controller(name, controller, principal=principal)
        log.info("device controller %s (%s) started", name, target)

    def _start_bridges(self) -> None:
        for spec in self.config.sections.get("bridges", ()):
            bridge = load_bridge(spec.name, spec.type, spec.plugin_options(self.node_id))
            self.add_bridge(
                spec.name,
                bridge,
                select=select_entries(spec.select),
                principal=spec.principal,
                buffer=spec.buffer,
                window=spec.window,
                max_size=spec.max_size,
            )

    def add_bridge(self, name: str, bridge: Bridge, **options: Any) -> BridgeHost:
        """Start ``bridge`` (see :mod:`linkserver.server.bridge_host`) with ``options``:
        ``select`` (Select entries), ``principal`` (a user name or Principal for inbound
        events), ``buffer``, ``window``, ``max_size``. The server must be running."""
        if not self.running:
            raise BridgeError(f"bridge {name!r}: start the server before adding bridges")
        if any(host.name == name for host in self.bridges):
            raise BridgeError(f"a bridge named {name!r} is already running")
        host = BridgeHost(
            name, bridge, self.engine, self.history, node=self.node_id, users=self.users, **options
        )
        host.attach()
        host.start()
        self.bridges.append(host)
        log.info("bridge %s (%s) started", name, type(bridge).__name__)
        return host

    def add_controller(
        self, name: str, controller: DeviceController, *, principal: str | None = None
    ) -> DeviceHandle:
        """Start an in-process controller that is not in the configuration.

        ``principal``: the user its events are authored by, whose grants are
        checked on every fire; None: the controller's name, trusted.
        """
        handle = LocalDeviceHandle(
            self.engine,
            name,
            owners=self.device_owners,
            principal=principal,
            users=self.users,
            resources=self.resources,
        )
        controller.start(handle)
        self.controllers.append((name, controller, handle))
        return handle

    def _lock_data_directory(self) -> None:
        data_dir = Path(self.config.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = data_dir / "linkserver.lock"
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the server's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise DataDirectoryBusy(
                f"another LinkServer ({holder}) is already running on {data_dir}; "
                "stop it or give this one another data_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def _unlock_data_directory(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- conveniences for in-process users ----------------------------------

    def fire(self, path: str, event: str, data: Any = None, **kwargs: Any) -> Event:
        return self.engine.fire(path, event, data, **kwargs)

    def listen(self, mask: str, event: str, listener: Any, **kwargs: Any) -> Subscription:
        return self.engine.listen(mask, event, listener, **kwargs)

    def user(self, name: str) -> Principal:
        """The user ``name`` as a Principal (KeyError if unknown)."""
        return self.users[name]
