"""The run-time tree kept in history: what a restart (or a crash) of a real server keeps."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crash_helpers import kill_at_first_line

from linkserver.core.catalog import DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import EventNotFound, HistoryError
from linkserver.core.events import Event, IdGenerator
from linkserver.core.levels import Level, Permission
from linkserver.core.permissions import Grants, Principal
from linkserver.core.tree import ContextTree
from linkserver.history.base import HistoryQuery
from linkserver.history.memory import MemoryHistoryStore
from linkserver.history.tree import StoredContext
from linkserver.loading.config import ControllerConfig, ServerConfig
from linkserver.loading.contexts import load_contexts
from linkserver.server.app import LinkServer
from linkserver.server.stored_tree import KnownDefinitions, UnrecordableContext
from linkserver.testing import CapturingListener

REPO = Path(__file__).resolve().parents[2]
CONTEXTS = REPO / "contexts"
OPERATOR = Principal(name="operator", grants=Grants({"**": "observer", "users.**": "operator"}))
MANAGER = Principal(name="manager", grants=Grants({"**": "observer", "users.**": "manager"}))
ENGINEER = Principal(name="engineer", grants=Grants({"**": "engineer"}))
DAY = timedelta(days=1)
ADMIN = Principal(name="admin", grants=Grants({"**": "admin"}))


class Servers:
    """Servers one after the other on the same data directory (SQLite history)."""

    def __init__(self, data_dir: Path, **config: Any) -> None:
        self.data_dir = data_dir
        self.config = config
        self.current: LinkServer | None = None

    def make(self) -> LinkServer:
        """A server not started yet (to subscribe before start)."""
        self.stop()
        config = ServerConfig.default(self.data_dir, **self.config)
        self.current = LinkServer(config, load_contexts([CONTEXTS]))
        return self.current

    def start(self) -> LinkServer:
        return self.make().start()

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    made = Servers(tmp_path / "data")
    yield made
    made.stop()


def test_contexts_added_and_removed_at_run_time_survive_a_restart(servers: Servers) -> None:
    server = servers.start()
    server.engine.add_context("devices.plc7", description="PLC 7")
    server.engine.add_context("devices.plc7.io")
    server.engine.add_context("devices.special", definitions="alert", description="a device with alerts")
    server.engine.add_context("devices.plc8")
    server.engine.remove_context("devices.plc8")
    server.engine.add_context("alerts.pump")
    server.engine.remove_context("users")  # a context of the files, removed at run time
    before = sorted(server.tree.paths())

    server = servers.make()
    seen = CapturingListener()
    server.listen("**", "*", seen)  # subscribed before start: covers the restored contexts too
    server.start()
    assert sorted(server.tree.paths()) == before
    tree = server.tree
    assert tree.get("devices.plc7").description == "PLC 7"
    assert tree.get("devices.plc7").definitions is tree.get("devices").child_definitions
    assert tree.get("devices.special").definitions is tree.templates["alert"]
    assert "devices.plc8" not in tree and "users" not in tree
    assert [e.name for e in seen.events] == ["serverStarted"]  # restoring fires no childAdded
    server.fire("devices.plc7", "connected")
    assert [e.context for e in seen.events][-1] == "devices.plc7"


def test_an_alert_added_at_run_time_still_requires_acknowledgement_after_a_restart(servers: Servers) -> None:
    server = servers.start()
    server.engine.add_context("alerts.pump")
    fired = server.fire("alerts.pump", "alert", {"message": "pump stalled"}, durable=True)

    server = servers.start()
    assert server.tree.definition("alerts.pump", "alert").requires_acknowledgement
    todo = server.access.query(HistoryQuery(acknowledged=False, requires_acknowledgement=True), OPERATOR)
    assert [e.id for e in todo.events] == [fired.id]
    server.access.acknowledge(fired.id, Principal(name="op", grants=Grants({"**": "operator"})), "reset")


def test_events_of_a_removed_context_keep_their_permissions_after_a_restart(servers: Servers) -> None:
    server = servers.start()
    server.engine.add_context("users.bob")
    login = server.fire("users.bob", "login", {"username": "bob", "address": None}, durable=True)
    server.engine.remove_context("users.bob")
    assert server.tree.find("users.bob") is None
    for restart in (False, True):
        if restart:
            server = servers.start()
        # login needs manager: the operator, observer everywhere, must not learn it exists.
        with pytest.raises(EventNotFound):
            server.access.get(login.id, OPERATOR)
        assert server.access.query(HistoryQuery(names=("login",)), OPERATOR).events == ()
        assert server.access.get(login.id, MANAGER).id == login.id
        assert server.access.receive_level("users.bob", "login") is Permission.MANAGER


def test_events_of_contexts_known_nowhere_need_the_strictest_level_their_name_has(servers: Servers) -> None:
    server = servers.start()
    ids = IdGenerator(node_id=9)

    def stored(context: str, name: str) -> int:
        # As stored by a server before the tree was kept: its context is gone without a trace.
        event_id, _ = ids.next()
        created = datetime.now(UTC)
        event = Event(event_id, context, name, Level.INFO, created, created + DAY, None, None, ({},))
        server.history.append(event).result(5)
        return event_id

    login = stored("users.ghost", "login")
    unknown = stored("devices.ghost", "neverDefinedAnywhere")
    with pytest.raises(EventNotFound):
        server.access.get(login, OPERATOR)
    assert server.access.get(login, MANAGER).id == login
    with pytest.raises(EventNotFound):
        server.access.get(unknown, ENGINEER)
    assert server.access.get(unknown, ADMIN).id == unknown


def test_a_tree_change_history_cannot_record_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    class Down(MemoryHistoryStore):
        failing = False

        def save_contexts(self, contexts: Any) -> int:
            if self.failing:
                raise HistoryError("the database is down")
            return super().save_contexts(contexts)

    store = Down()
    config = ServerConfig.default(tmp_path / "data", database_url="memory://")
    server = LinkServer(config, load_contexts([CONTEXTS]), history=store).start()
    try:
        server.engine.add_context("devices.plc1")
        seen = CapturingListener()
        server.listen("**", "*", seen)
        store.failing = True
        with pytest.raises(HistoryError, match="database is down"):
            server.engine.add_context("devices.plc2")
        with pytest.raises(HistoryError, match="database is down"):
            server.engine.remove_context("devices.plc1")
        assert "devices.plc2" not in server.tree and "devices.plc1" in server.tree
        assert seen.events == []  # no childAdded/childRemoved for what did not happen
        store.failing = False
        server.engine.remove_context("devices.plc1")
        stored = [(c.path, c.removed) for c in store.load_contexts() if c.path.startswith("devices")]
        assert stored == [("devices.plc1", True)]  # (users.admin is there too: every user has its context)
    finally:
        server.stop()


def test_a_context_a_restart_could_not_rebuild_is_refused(servers: Servers) -> None:
    server = servers.start()
    custom = DefinitionSet([EventDefinition(name="beep")])
    with pytest.raises(UnrecordableContext, match="devices.x: its definitions are neither a template"):
        server.engine.add_context("devices.x", definitions=custom)
    assert "devices.x" not in server.tree
    server.engine.add_context("devices.y", definitions=server.tree.templates["alert"])  # a template: fine


def test_a_context_whose_template_is_gone_is_skipped_and_comes_back_with_it(servers: Servers) -> None:
    server = servers.start()
    server.history.save_contexts(
        [StoredContext(path="devices.odd", template="noSuchTemplate", changed=datetime.now(UTC))]
    )
    server = servers.start()
    assert "devices.odd" not in server.tree
    kept = [c.path for c in server.history.load_contexts() if c.path.startswith("devices")]
    assert kept == ["devices.odd"]  # kept for later


CRASHING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from linkserver.loading.config import ControllerConfig, ServerConfig
    from linkserver.loading.contexts import load_contexts
    from linkserver.server.app import LinkServer

    data_dir, contexts = sys.argv[1], sys.argv[2]
    controllers = (ControllerConfig(name="sim", target="linkserver.devices.simulator:SimulatorController",
                                    options={"devices": 2, "interval": "1h"}),)
    config = ServerConfig.default(data_dir, controllers=controllers)
    server = LinkServer(config, load_contexts([Path(contexts)])).start()
    server.engine.add_context("devices.crash1")
    event = server.fire("devices.crash1", "error", {"code": "E7", "message": "boom"}, durable=True)
    print(event.id, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_context_fired_in_just_after_it_was_added_exists_after_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    line = kill_at_first_line(CRASHING, str(data_dir), str(CONTEXTS))
    assert line.isdigit(), line
    controllers = (
        ControllerConfig(
            name="sim",
            target="linkserver.devices.simulator:SimulatorController",
            options={"devices": 2, "interval": "1h"},
        ),
    )
    # The simulator finds its devices still there (no clean stop removed them) and adopts them.
    server = LinkServer(ServerConfig.default(data_dir, controllers=controllers), load_contexts([CONTEXTS]))
    server.start()
    try:
        assert {"devices.crash1", "devices.sim1", "devices.sim2"} <= set(server.tree.paths())
        event = server.access.get(int(line), None)
        assert (event.context, event.name) == ("devices.crash1", "error")
    finally:
        server.stop()


def test_a_second_server_on_the_same_database_starts_from_the_same_tree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'history.sqlite3'}"
    first = LinkServer(ServerConfig.default(tmp_path / "a", database_url=url), load_contexts([CONTEXTS]))
    first.start()
    try:
        first.engine.add_context("devices.plc7", description="PLC 7")
        first.engine.remove_context("alerts")
        second = LinkServer(
            ServerConfig.default(tmp_path / "b", database_url=url, node_id=2), load_contexts([CONTEXTS])
        )
        second.start()
        try:
            assert sorted(second.tree.paths()) == sorted(first.tree.paths())
            assert second.tree.get("devices.plc7").description == "PLC 7"
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_path_added_again_needs_the_stricter_of_its_old_and_new_definitions() -> None:
    strict = DefinitionSet([EventDefinition(name="login", permissions="manager")], name="strict")
    lax = DefinitionSet([EventDefinition(name="login", permissions="observer")], name="lax")
    tree = ContextTree(templates={"strict": strict, "lax": lax})
    tree.add("users")
    known = KnownDefinitions(tree)
    tree.before_change = lambda change: known.remember(change.contexts) if change.kind == "removed" else None
    tree.add("users.bob", definitions="strict")
    tree.remove("users.bob")
    assert known.receive_level("users.bob", "login") is Permission.MANAGER
    tree.add("users.bob", definitions="lax")
    assert known.receive_level("users.bob", "login") is Permission.MANAGER
    assert known.receive_level("users.ann", "login") is Permission.MANAGER  # known nowhere: the strictest
    assert known.receive_level("users.ann", "neverDefined") is Permission.ADMIN
