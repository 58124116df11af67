import pytest

from linkserver.core.catalog import Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import (
    ContextExists,
    ContextNotFound,
    EventNotDefined,
    InvalidName,
    TemplateNotFound,
)
from linkserver.core.tree import ContextTree

DEVICE = DefinitionSet(
    [EventDefinition(name="connected"), EventDefinition(name="measurement")], name="device"
)


@pytest.fixture
def tree():
    changes = []
    tree = ContextTree(templates={"device": DEVICE}, on_change=changes.append)
    tree.add("devices", child_definitions="device")
    tree.add("users")
    tree.changes = changes
    return tree


def test_children_added_at_run_time_share_their_parents_child_definitions(tree):
    for n in range(1000):
        tree.add(f"devices.d{n}")
    assert {id(tree.get(f"devices.d{n}").definitions) for n in range(1000)} == {id(DEVICE)}
    assert tree.definition("devices.d5", "connected").name == "connected"


def test_removing_a_context_removes_its_subtree_and_reports_it(tree):
    tree.add("devices.d1")
    tree.add("devices.d1.io")
    removed = tree.remove("devices")
    assert removed == ("devices.d1.io", "devices.d1", "devices")
    assert "devices.d1" not in tree and "devices" not in tree
    assert tree.changes[-1].kind == "removed" and tree.changes[-1].parent == ""


def test_bad_changes_leave_the_tree_unchanged(tree):
    before = tree.paths()
    with pytest.raises(ContextExists):
        tree.add("devices")
    with pytest.raises(ContextNotFound, match="'nowhere' does not exist"):
        tree.add("nowhere.x")
    with pytest.raises(InvalidName):
        tree.add("devices.bad-name")
    with pytest.raises(TemplateNotFound, match="known templates: device"):
        tree.add("devices.x", definitions="devcie")
    with pytest.raises(ContextNotFound):
        tree.remove("devices.ghost")
    with pytest.raises(InvalidName):
        tree.remove("")
    assert tree.paths() == before


def test_unknown_event_error_names_context_and_event(tree):
    tree.add("devices.d1")
    with pytest.raises(
        EventNotDefined, match=r"'conected' is not defined in context 'devices.d1'.*connected"
    ):
        tree.definition("devices.d1", "conected")


def test_match_walks_only_matching_branches(tree):
    tree.add("devices.d1")
    tree.add("users.alice")
    assert [c.path for c in tree.match("devices.*")] == ["devices.d1"]
    assert [c.path for c in tree.match("**")] == ["", "devices", "devices.d1", "users", "users.alice"]
    assert [c.path for c in tree.walk("users")] == ["users", "users.alice"]


def test_tree_from_catalog_creates_parents_first():
    catalog = Catalog(
        templates={"device": DEVICE},
        contexts=[
            ContextSpec(path="root", description="top"),
            ContextSpec(path="devices.d1", definitions=DEVICE),
        ],
    )
    tree = ContextTree.from_catalog(catalog)
    assert tree.root.description == "top"
    assert tree.get("devices.d1").definitions is DEVICE
    assert "devices" in tree


def test_before_change_sees_each_change_before_it_happens_and_can_refuse_it(tree):
    seen = []

    def record(change):
        # The added context is not reachable yet; removed ones still are.
        seen.append((change.kind, change.path, [c.path in tree for c in change.contexts]))
        if change.path.endswith("refused"):
            raise OSError("the disk is full")

    tree.before_change = record
    tree.add("devices.d1")
    tree.add("devices.d1.io")
    with pytest.raises(OSError, match="disk is full"):
        tree.add("devices.refused")
    assert "devices.refused" not in tree
    tree.remove("devices.d1")
    assert seen == [
        ("added", "devices.d1", [False]),
        ("added", "devices.d1.io", [False]),
        ("added", "devices.refused", [False]),
        ("removed", "devices.d1", [True, True]),
    ]
    # on_change hears only of what happened.
    assert [(c.kind, c.path) for c in tree.changes[-3:]] == [
        ("added", "devices.d1"),
        ("added", "devices.d1.io"),
        ("removed", "devices.d1"),
    ]


def test_a_refused_removal_leaves_the_subtree_in_place(tree):
    tree.add("devices.d1")
    tree.add("devices.d1.io")

    def refuse(change):
        raise OSError("database down")

    tree.before_change = refuse
    with pytest.raises(OSError):
        tree.remove("devices.d1")
    assert "devices.d1" in tree and "devices.d1.io" in tree
    assert tree.get("devices").children["d1"].children["io"].path == "devices.d1.io"


def test_parents_created_on_the_way_pass_before_change_and_stay_when_the_child_is_refused(tree):
    seen = []

    def record(change):
        seen.append(change.path)
        if change.path == "plant.line1.press":
            raise OSError("refused")

    tree.before_change = record
    with pytest.raises(OSError):
        tree.add("plant.line1.press", create_parents=True)
    assert seen == ["plant", "plant.line1", "plant.line1.press"]
    assert "plant.line1" in tree and "plant.line1.press" not in tree
    # The parents that were made are reported to on_change too.
    assert [c.path for c in tree.changes[-2:]] == ["plant", "plant.line1"]
