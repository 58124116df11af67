"""Two context masks together: a context both match, every context of one matching the other."""

from __future__ import annotations

import itertools

import pytest

from linkserver.core.mask_sets import mask_within, masks_overlap
from linkserver.core.paths import compile_mask


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("devices.*", "devices.plc1", True),
        ("devices.*", "**.plc1", True),
        ("devices.*", "alerts.**", False),
        ("devices.*", "devices.*.*", False),
        ("devices.**", "devices.*.*", True),
        ("devices.**", "devices", True),
        ("**", "root", True),
        ("*", "root", False),
        ("a.**.b", "**.c", False),
        ("a.**.b", "*.x.**", True),
        ("**.a.**", "**.b.**", True),
    ],
)
def test_masks_overlap_when_one_context_matches_both(first: str, second: str, overlap: bool) -> None:
    assert masks_overlap(first, second) is overlap
    assert masks_overlap(second, first) is overlap


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        ("devices.plc1", "devices.*", True),
        ("devices.*", "devices.**", True),
        ("devices.**", "devices.*", False),
        ("devices.*", "**", True),
        ("root", "**", True),
        ("**", "*.**", False),  # root
        ("a.*.b", "a.**", True),
        ("a.**", "a.**.**", True),
    ],
)
def test_mask_within_when_every_context_of_one_matches_the_other(
    inner: str, outer: str, within: bool
) -> None:
    assert mask_within(inner, outer) is within


def test_both_agree_with_matching_every_short_path() -> None:
    names = ("a", "b", "c")
    paths = [""] + [".".join(p) for n in range(1, 5) for p in itertools.product(names, repeat=n)]
    masks = ["**", "*", "a", "a.*", "a.**", "*.b", "**.b", "a.**.b", "*.*", "**.a.**", "root"]
    for first, second in itertools.product(masks, repeat=2):
        one, two = compile_mask(first), compile_mask(second)
        both = any(one.matches(p) and two.matches(p) for p in paths)
        inside = all(two.matches(p) for p in paths if one.matches(p))
        assert masks_overlap(first, second) is both, (first, second)
        assert mask_within(first, second) is inside, (first, second)
