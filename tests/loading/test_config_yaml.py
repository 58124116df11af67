"""config/linkserver.yaml -> ServerConfig: defaults, the shipped file, every error at file:line:column."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import ConfigError
from linkserver.core.levels import Permission
from linkserver.loading import ServerConfig, load_all, load_config, load_config_text
from linkserver.loading.config import DEFAULT_CONFIG_PATH
from linkserver.loading.shipped import SHIPPED_CONFIG, SHIPPED_CONTEXTS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINKSERVER_CONFIG", raising=False)


def write(text: str, name: str = "config/linkserver.yaml") -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(text))
    return info.value.problems


def persistent(name: str, expiration: timedelta | None = None) -> EventDefinition:
    return EventDefinition(name=name, persistent=True, expiration=expiration)


def test_a_file_naming_no_contexts_with_none_beside_it_gets_the_shipped_ones(tmp_path: Path) -> None:
    """A file written to change a few settings (docs/cluster.md's) serves the standard contexts;
    one that names a missing directory is still told so."""
    assert load_config(write("")).context_paths == (SHIPPED_CONTEXTS,)
    with pytest.raises(ConfigError, match="does not exist"):
        load_all(write("server: {contexts: [../nowhere]}\n"))


def test_an_empty_file_gives_the_documented_defaults(tmp_path: Path) -> None:
    (tmp_path / "contexts").mkdir()
    config = load_config(write(""))
    assert config.node_id == 0
    assert config.data_dir == tmp_path / "data"
    assert config.context_paths == (tmp_path / "contexts",)
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 7341)
    assert config.database_url == f"sqlite:///{tmp_path}/data/history.sqlite3"
    assert config.default_expiration == timedelta(days=10)
    assert config.history_durability == "commit"
    assert (config.writer_batch_size, config.writer_flush_interval, config.writer_queue_size) == (
        500,
        timedelta(milliseconds=5),
        10_000,
    )
    assert (config.purge_interval, config.purge_batch_size) == (timedelta(hours=1), 5000)
    assert config.delivery_queue_size == 1000
    assert config.expiration.rules == () and config.expiration.default == timedelta(days=10)
    assert list(config.users) == ["admin"]
    assert config.users["admin"].grants.level_for("devices.x") is Permission.ADMIN
    assert config.controllers == ()
    assert config.source == tmp_path / "config" / "linkserver.yaml"


def test_every_key_is_read_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    config = load_config(
        write(
            """
            server:
              node_id: 1023
              data_dir: var/lib
              contexts: [../defs, /opt/more.yaml]
              listen: "[::1]:0"
            history:
              database_url: postgresql+psycopg://db/linkserver
              default_expiration: 1d12h
              durability: fsync
              writer: {batch_size: 10, flush_interval: 0s, queue_size: 20}
              purge: {interval: 30m, batch_size: 7}
            delivery: {queue_size: 3}
            expiration:
              - {mask: "devices.**", event: measurement, expiration: 2d}
              - {mask: "**", expiration: 20d}
            users:
              alice:
                password_hash: "scrypt$abc"
                grants: {"**": observer, "devices.*": operator}
              nobody:
            controllers:
              - name: simulator
                class: linkserver.devices.simulator:SimulatorController
                options: {devices: 3, interval: 2s}
              - {name: other, class: "pkg:Cls"}
            """
        )
    )
    assert config.node_id == 1023
    assert config.data_dir == tmp_path / "config" / "var" / "lib"
    assert config.context_paths == (tmp_path / "defs", Path("/opt/more.yaml"))
    assert (config.listen_host, config.listen_port) == ("::1", 0)
    assert config.database_url == "postgresql+psycopg://db/linkserver"
    assert config.default_expiration == timedelta(days=1, hours=12)
    assert config.history_durability == "fsync"
    assert (config.writer_batch_size, config.writer_flush_interval, config.writer_queue_size) == (
        10,
        timedelta(0),
        20,
    )
    assert (config.purge_interval, config.purge_batch_size, config.delivery_queue_size) == (
        timedelta(minutes=30),
        7,
        3,
    )
    table = config.expiration
    assert table.default == timedelta(days=1, hours=12)
    assert table.lifetime("devices.plc7", persistent("measurement")) == timedelta(days=2)
    assert table.lifetime("users.bob", persistent("login", timedelta(days=90))) == timedelta(days=20)
    assert sorted(config.users) == ["alice", "nobody"]
    alice = config.users["alice"]
    assert alice.password_hash == "scrypt$abc"
    assert alice.grants.level_for("devices.plc7") is Permission.OPERATOR
    assert alice.grants.level_for("users") is Permission.OBSERVER
    assert config.users["nobody"].grants.level_for("") is Permission.NONE
    simulator, other = config.controllers
    assert simulator.name == "simulator"
    assert simulator.target == "linkserver.devices.simulator:SimulatorController"
    assert simulator.options == {"devices": 3, "interval": "2s"}
    assert other.options == {}


def test_data_dir_and_listen_given_replace_the_files_and_the_database_follows(tmp_path: Path) -> None:
    path = write("server: {data_dir: here, listen: '127.0.0.1:1'}\n")
    config = load_config(path, data_dir=tmp_path / "elsewhere", listen="[::1]:0")
    assert config.data_dir == tmp_path / "elsewhere"
    assert config.database_url == f"sqlite:///{tmp_path}/elsewhere/history.sqlite3"
    assert (config.listen_host, config.listen_port) == ("::1", 0)
    explicit = write("history: {database_url: 'memory://'}\n", "other/linkserver.yaml")
    assert load_config(explicit, data_dir=tmp_path / "x").database_url == "memory://"
    with pytest.raises(ValueError, match="host:port such as 127.0.0.1:7341"):
        load_config(path, listen="nowhere")


def test_the_checkout_links_to_the_one_shipped_copy() -> None:
    assert (REPO / "config").resolve() == SHIPPED_CONFIG.parent
    assert (REPO / "contexts").resolve() == SHIPPED_CONTEXTS


def test_the_shipped_configuration_loads() -> None:
    config = load_config(REPO / "config" / "linkserver.yaml")
    assert config.data_dir == REPO / "data"
    assert config.context_paths == (REPO / "contexts",)
    assert config.database_url == f"sqlite:///{REPO}/data/history.sqlite3"
    assert config.users["admin"].grants.level_for("anything.below") is Permission.ADMIN
    operator = config.users["operator"].grants
    assert operator.level_for("devices.plc7") is Permission.OPERATOR
    assert operator.level_for("users.alice") is Permission.OBSERVER
    (simulator,) = config.controllers
    assert simulator.options["devices"] == 3
    assert config.expiration.lifetime("devices.plc7", persistent("measurement")) == timedelta(days=2)


def test_default_needs_no_file(tmp_path: Path) -> None:
    config = ServerConfig.default(tmp_path / "d", node_id=5, default_expiration=timedelta(days=1))
    assert config.data_dir == tmp_path / "d" and config.node_id == 5
    assert config.database_url == f"sqlite:///{tmp_path}/d/history.sqlite3"
    assert config.expiration.default == timedelta(days=1)
    assert config.source is None and config.context_paths == ()
    assert ServerConfig.default().data_dir == tmp_path / "data"


def test_load_config_without_a_path_reads_the_local_file_or_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = load_config(None)
    assert shipped.source == SHIPPED_CONFIG and shipped.context_paths == (SHIPPED_CONTEXTS,)
    assert shipped.data_dir == tmp_path / "data"  # never inside the installed package
    assert shipped.database_url == f"sqlite:///{tmp_path}/data/history.sqlite3"
    assert [c.name for c in shipped.controllers] == ["simulator"]
    write("server: {node_id: 7}\n", str(DEFAULT_CONFIG_PATH))
    assert load_config(None).node_id == 7
    write("server: {node_id: 8}\n", "elsewhere.yaml")
    monkeypatch.setenv("LINKSERVER_CONFIG", "elsewhere.yaml")
    assert load_config(None).node_id == 8


def test_a_missing_file_given_explicitly_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Path("nope.yaml"))
    assert info.value.problems == ["nope.yaml:1:1: file not found"]


def test_unknown_keys_suggest_the_closest_one() -> None:
    assert problems(
        """
        sever: {}
        server:
          data_dri: x
        history:
          writer: {batchsize: 1}
        users:
          bob: {grant: {}}
        """
    ) == [
        "config/linkserver.yaml:1:1: unknown key 'sever' in the configuration; did you mean 'server'?",
        "config/linkserver.yaml:3:3: unknown key 'data_dri' in 'server'; did you mean 'data_dir'?",
        "config/linkserver.yaml:5:12: unknown key 'batchsize' in 'writer' in 'history'; "
        "did you mean 'batch_size'?",
        "config/linkserver.yaml:7:9: unknown key 'grant' in user 'bob'; did you mean 'grants'?",
    ]


def test_wrong_types_and_ranges() -> None:
    assert problems(
        """
        server:
          node_id: 1024
          data_dir: [a]
          contexts: [3]
        history:
          database_url: 5
          writer: {batch_size: 0, queue_size: "big"}
          purge: {batch_size: 1.5}
        delivery: {queue_size: -1}
        users: [admin]
        """
    ) == [
        "config/linkserver.yaml:2:12: 'node_id' in 'server' must be an integer from 0 to 1023, "
        "got the integer 1024",
        "config/linkserver.yaml:3:13: 'data_dir' in 'server' must be a string, got a list",
        "config/linkserver.yaml:4:14: 'contexts' in 'server' must list directories or files, "
        "got the integer 3",
        "config/linkserver.yaml:6:17: 'database_url' in 'history' must be a string, got the integer 5",
        "config/linkserver.yaml:7:24: 'batch_size' in 'writer' in 'history' must be an integer >= 1, "
        "got the integer 0",
        "config/linkserver.yaml:7:39: 'queue_size' in 'writer' in 'history' must be an integer >= 1, "
        "got the string 'big'",
        "config/linkserver.yaml:8:23: 'batch_size' in 'purge' in 'history' must be an integer >= 1, "
        "got the number 1.5",
        "config/linkserver.yaml:9:24: 'queue_size' in 'delivery' must be an integer >= 1, got the integer -1",
        "config/linkserver.yaml:10:8: 'users' must be a mapping, got a list",
    ]


@pytest.mark.parametrize("listen", ["localhost", ":80", "host:99999", "host:port", "a b:1", "7341"])
def test_bad_listen_addresses(listen: str) -> None:
    assert problems(f"server:\n  listen: '{listen}'\n") == [
        "config/linkserver.yaml:2:11: 'listen' in 'server' must be 'host:port' such as 127.0.0.1:7341 "
        f"or [::1]:7341, got the string {listen!r}",
    ]


def test_bad_durations() -> None:
    duration = "a positive duration such as 10d, 6h, 30m, 45s or 500ms"
    assert problems(
        """
        history:
          default_expiration: 10 days
          writer: {flush_interval: soon}
          purge: {interval: 0s}
        """
    ) == [
        f"config/linkserver.yaml:2:23: 'default_expiration' in 'history' must be {duration}, "
        "got the string '10 days'",
        "config/linkserver.yaml:3:28: 'flush_interval' in 'writer' in 'history' must be a duration such as "
        "10d, 6h, 30m, 45s or 5ms, got the string 'soon'",
        f"config/linkserver.yaml:4:21: 'interval' in 'purge' in 'history' must be {duration}, "
        "got the string '0s'",
    ]


def test_a_durability_other_than_commit_or_fsync_is_refused() -> None:
    assert problems("history:\n  durability: always\n") == [
        "config/linkserver.yaml:2:15: 'durability' in 'history' must be one of commit, fsync, "
        "got the string 'always'"
    ]


def test_bad_expiration_rules() -> None:
    assert problems(
        """
        expiration:
          - {mask: "devices.***", event: measurement, expiration: 2d}
          - {mask: "**", event: "bad-name", expiration: 2d}
          - {mask: "**", event: x}
          - {event: x, expiration: 1d, extra: 1}
          - {mask: "**", expiration: -1d}
          - {mask: "**", event: "*", expiration: 1d}
          - {mask: "**", expiration: 3d}
          - 5
        """
    ) == [
        "config/linkserver.yaml:2:12: invalid context mask 'devices.***': '***' is neither a name, "
        "'*' nor '**'; a mask is like devices.*, users.** or **",
        "config/linkserver.yaml:3:25: invalid event name 'bad-name': use letters, digits and '_' only "
        "(or '*' for every event)",
        "config/linkserver.yaml:4:5: expiration rule 3 has no 'expiration'; add it",
        "config/linkserver.yaml:5:5: expiration rule 4 has no 'mask'; add it",
        "config/linkserver.yaml:5:32: unknown key 'extra' in expiration rule 4; valid keys: "
        "event, expiration, mask",
        "config/linkserver.yaml:6:30: 'expiration' in expiration rule 5 must be a positive duration such as "
        "10d, 6h, 30m, 45s or 500ms, got the string '-1d'",
        "config/linkserver.yaml:8:5: a rule for mask '**' and event '*' already exists at line 7, column 5; "
        "remove one of them",
        "config/linkserver.yaml:9:5: expiration rule 8 must be a mapping, got the integer 5",
    ]


def test_bad_users_and_grants() -> None:
    assert problems(
        """
        users:
          bad.name: {}
          bob:
            password_hash: 12
            grants: {"**": god, "a..b": admin, "x": 2}
        """
    ) == [
        "config/linkserver.yaml:2:3: invalid user name 'bad.name': use letters, digits and '_' only",
        "config/linkserver.yaml:4:20: 'password_hash' in user 'bob' must be a string, got the integer 12",
        "config/linkserver.yaml:5:20: the grant of '**' to user 'bob' must be one of none, observer, "
        "operator, manager, engineer, admin, got the string 'god'",
        "config/linkserver.yaml:5:25: invalid context mask 'a..b': '' is neither a name, '*' nor '**'; "
        "a mask is like devices.*, users.** or **",
    ]


def test_bad_controllers() -> None:
    assert problems(
        """
        controllers:
          - name: sim
            class: not a class
          - {name: sim2, class: "a.b:C", options: [1]}
          - {class: "a:b"}
          - {name: ok, class: "a:b"}
          - {name: ok, class: "c:d"}
        """
    ) == [
        "config/linkserver.yaml:3:12: 'class' in controller 'sim' must be 'module.path:ClassName', "
        "got 'not a class'",
        "config/linkserver.yaml:4:43: 'options' in controller 'sim2' must be a mapping, got a list",
        "config/linkserver.yaml:5:5: controller 3 has no 'name'; add it",
        "config/linkserver.yaml:7:12: controller 'ok' is already defined at line 6, column 5; "
        "give each controller its own name",
    ]


def test_a_controller_principal_is_a_user_name() -> None:
    config = load_config_text(
        "controllers:\n  - {name: m, class: 'a:B', principal: plant}\n", Path("config/linkserver.yaml")
    )
    assert config.controllers[0].principal == "plant"
    assert problems("controllers:\n  - {name: m, class: 'a:B', principal: plant-7}\n") == [
        "config/linkserver.yaml:2:40: invalid user name 'plant-7': use letters, digits and '_' only",
    ]


def test_duplicate_keys_and_syntax_errors() -> None:
    assert problems("server:\n  node_id: 1\n  node_id: 2\n") == [
        "config/linkserver.yaml:3:3: duplicate key 'node_id' in 'server'; the first is at line 2, column 3",
    ]
    (message,) = problems("server:\n  node_id: 1\n listen: x\n")
    assert message.startswith("config/linkserver.yaml:3:2: invalid YAML: ")


def test_load_config_text_reports_under_the_given_name(tmp_path: Path) -> None:
    config = load_config_text("server: {data_dir: here}\n", tmp_path / "c" / "x.yaml")
    assert config.data_dir == tmp_path / "c" / "here"
    with pytest.raises(ConfigError) as info:
        load_config_text("server: {node_id: -1}\n", Path("c/x.yaml"))
    assert info.value.problems[0].startswith("c/x.yaml:1:19: 'node_id'")
