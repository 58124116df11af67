"""check_files and load_all: configuration and contexts checked together."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from linkserver.core.errors import ConfigError
from linkserver.core.tree import ContextTree
from linkserver.loading import check_files, load_all

REPO = Path(__file__).resolve().parents[2]

CONTEXTS = """
templates:
  device:
    events:
      measurement: {persistent: false}
      error: {persistent: true}
contexts:
  devices: {child_templates: [device]}
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINKSERVER_CONFIG", raising=False)


def write(name: str, text: str) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_the_shipped_files_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert check_files([]) == []
    assert check_files([Path("config"), Path("contexts")]) == []
    assert check_files([REPO / "config" / "linkserver.yaml"]) == []


def test_load_all_gives_the_shipped_configuration_and_tree() -> None:
    config, catalog = load_all(REPO / "config" / "linkserver.yaml")
    assert config.context_paths == (REPO / "contexts",)
    tree = ContextTree.from_catalog(catalog)
    assert sorted(tree.paths()) == ["", "alerts", "devices", "users", "vms"]
    assert "connected" in tree.add("devices.sim1").definitions


def test_load_all_without_a_path_reads_the_default_configuration(tmp_path: Path) -> None:
    shutil.copytree(REPO / "contexts", tmp_path / "contexts")
    write("config/linkserver.yaml", "server: {node_id: 3}\n")
    config, catalog = load_all()
    assert config.node_id == 3 and len(catalog.contexts) == 5


def test_rule_for_a_non_persistent_event_is_an_error_at_the_rule() -> None:
    write("contexts/devices.yaml", CONTEXTS)
    write(
        "config/linkserver.yaml",
        """
        expiration:
          - {mask: "devices.**", event: error, expiration: 30d}
          - {mask: "devices.**", event: measurement, expiration: 2d}
          - {mask: "**", event: "*", expiration: 20d}
        """,
    )
    expected = [
        "config/linkserver.yaml:3:33: expiration for non-persistent event 'measurement' would make it "
        "persistent; the table cannot do that: set persistent: true in its definition or remove this rule",
    ]
    assert check_files([]) == expected
    assert check_files([Path("config/linkserver.yaml")]) == expected
    assert check_files([Path("config"), Path("contexts")]) == expected
    with pytest.raises(ConfigError) as info:
        load_all(Path("config/linkserver.yaml"))
    assert info.value.problems == expected


def test_rule_for_an_event_defined_nowhere_is_an_error_with_a_suggestion() -> None:
    write("contexts/devices.yaml", CONTEXTS)
    write("config/linkserver.yaml", "expiration:\n  - {mask: '**', event: eror, expiration: 1d}\n")
    assert check_files([]) == [
        "config/linkserver.yaml:2:25: expiration rule for event 'eror', which no context defines; "
        "did you mean 'error'?",
    ]


def test_problems_of_the_configuration_and_of_the_contexts_are_reported_together() -> None:
    write("contexts/devices.yaml", "contexts:\n  devices: {templats: []}\n")
    write("contexts/users.yaml", "contexts: {users: {\n")
    rule = "{mask: '**', event: x, expiration: 1d}"
    write("config/linkserver.yaml", f"server: {{node_id: -1}}\nexpiration: [{rule}]\n")
    found = check_files([])
    assert [line.split(": ", 1)[0] for line in found] == [
        "config/linkserver.yaml:1:19",
        "contexts/devices.yaml:2:13",
        "contexts/users.yaml:2:1",
    ]  # no "event 'x' is defined nowhere": a context file could not be read
    with pytest.raises(ConfigError) as info:
        load_all(Path("config/linkserver.yaml"))
    assert info.value.problems == found


def test_a_context_path_that_does_not_exist_is_reported_where_it_is_named() -> None:
    write("config/linkserver.yaml", "server:\n  contexts: [../defs, ../contexts]\n")
    write("contexts/a.yaml", "contexts: {a: {}}\n")
    assert check_files([]) == [
        "config/linkserver.yaml:2:14: context path 'defs' does not exist; "
        "fix 'contexts' in 'server' or create it",
    ]


def test_files_are_classified_as_configuration_or_contexts() -> None:
    write("elsewhere/server.yaml", "server: {node_id: 5000}\n")  # by its keys
    write("config/extra.yaml", "")  # by its directory: an empty configuration is valid
    write("contexts/a.yaml", "contexts: {a: {}}\n")
    write("defs/b.yaml", "users: {}\ncontexts: {b: {templates: [nope]}}\n")  # context keys: contexts
    found = check_files([Path("elsewhere/server.yaml"), Path("config/extra.yaml"), Path("defs")])
    assert found == [
        "elsewhere/server.yaml:1:19: 'node_id' in 'server' must be an integer from 0 to 1023, "
        "got the integer 5000",
        "defs/b.yaml:1:1: unknown key 'users' in a context file; "
        "valid keys: contexts, formats, state_machines, templates",
        "defs/b.yaml:2:28: unknown template 'nope' in context 'b'; there are no known templates",
    ]


def test_context_files_can_be_checked_alone() -> None:
    write("contexts/a.yaml", "templates: {t: {}}\n")
    write("contexts/b.yaml", "contexts: {b: {templates: [t]}}\n")
    assert check_files([Path("contexts/a.yaml"), Path("contexts/b.yaml")]) == []
    assert check_files([Path("contexts/b.yaml")]) == [
        "contexts/b.yaml:1:28: unknown template 't' in context 'b'; there are no known templates",
    ]


def test_without_paths_and_without_a_local_configuration_the_shipped_one_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert check_files([]) == []
    monkeypatch.setenv("LINKSERVER_CONFIG", "config/missing.yaml")
    assert check_files([]) == ["config/missing.yaml:1:1: file not found"]
    assert check_files([Path("missing.yaml")]) == ["missing.yaml:1:1: file not found"]


def test_a_file_named_like_the_configuration_is_checked_as_one() -> None:
    write("etc/linkserver.yaml", "")  # empty: a valid configuration naming ../contexts
    write("contexts/a.yaml", "contexts: {a: {}}\n")
    assert check_files([Path("etc/linkserver.yaml")]) == []
    write("contexts/a.yaml", "contexts: {a: {templates: [t]}}\n")
    assert check_files([Path("etc/linkserver.yaml")]) == [
        "contexts/a.yaml:1:28: unknown template 't' in context 'a'; there are no known templates",
    ]
