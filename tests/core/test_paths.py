import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkserver.core.errors import InvalidName, LinkServerError
from linkserver.core.paths import ROOT, compile_mask, parent_of, parse_path


@pytest.mark.parametrize("text", ["", "root"])
def test_root_is_the_empty_path_and_accepts_its_display_name(text):
    assert parse_path(text) == ROOT


@pytest.mark.parametrize("bad", ["a..b", ".a", "a.", "a b", "a-b", "root.x", "ä", 7])
def test_invalid_paths_are_rejected_naming_the_path(bad):
    with pytest.raises(InvalidName) as info:
        parse_path(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("mask", "path", "expected"),
    [
        ("devices.*", "devices.plc7", True),
        ("devices.*", "devices", False),
        ("devices.*", "devices.plc7.io", False),
        ("devices.**", "devices", True),
        ("devices.**", "devices.plc7.io", True),
        ("devices.**", "devicesX", False),
        ("**", "", True),
        ("**", "a.b.c", True),
        ("*", "", False),
        ("*", "users", True),
        ("users.*.devices.**", "users.alice.devices", True),
        ("users.*.devices.**", "users.alice.devices.d1.x", True),
        ("users.*.devices.**", "users.devices", False),
        ("root", "", True),
        ("users.alice", "users.alice", True),
        ("users.alice", "users.alice2", False),
        ("a.**.z", "a.z", True),
        ("a.**.z", "a.b.c.z", True),
        ("a.**.z", "a.b.c", False),
    ],
)
def test_mask_matching(mask, path, expected):
    assert compile_mask(mask).matches(path) is expected


def test_mask_pruning_never_prunes_a_branch_holding_a_match():
    mask = compile_mask("users.*.devices.**")
    assert mask.could_match_below("users")
    assert mask.could_match_below("users.alice")
    assert not mask.could_match_below("devices")
    assert not compile_mask("a.b").could_match_below("a.b.c")


@pytest.mark.parametrize("bad", ["a.***", "a.b*", "a..b", "x.-"])
def test_invalid_masks_are_rejected(bad):
    with pytest.raises(InvalidName):
        compile_mask(bad)


def test_parent_of():
    assert parent_of("a.b.c") == "a.b"
    assert parent_of("a") == ""
    assert parent_of("") is None


names = st.sampled_from(["a", "b", "dev_1", "*", "**", "", ".", "x.y", "a b"])


@given(st.lists(names, max_size=6).map(".".join), st.lists(st.sampled_from(["a", "b", "dev_1"]), max_size=6))
def test_masks_either_compile_and_match_or_raise_our_error(text, path_names):
    try:
        mask = compile_mask(text)
    except LinkServerError:
        return
    path = ".".join(path_names)
    result = mask.matches(path)
    assert isinstance(result, bool)
    if result:
        assert mask.could_match_below(path)
