"""Every filter written in a YAML example of the docs parses: a rule's ``filter``, ``open`` and
``close``, a bridge's or subscription's ``filter``, as a reader would copy it into a file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from linkserver.core.filters import parse_filter

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("filter", "open", "close")


def _values(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            found
            for key, value in node.items()
            for found in ([value] if key in KEYS and isinstance(value, str) else _values(value))
        ]
    if isinstance(node, list):
        return [found for item in node for found in _values(item)]
    return []


def yaml_filters(page: Path) -> list[tuple[int, str]]:
    """The (line, text) of each filter-valued key in the page's ```yaml blocks."""
    text = page.read_text()
    found = []
    for block in re.finditer(r"^```yaml\n(.*?)^```$", text, re.S | re.M):
        start = text.count("\n", 0, block.start(1)) + 1
        try:
            document = yaml.safe_load(block.group(1))
        except yaml.YAMLError:
            continue  # a fragment with placeholders; not a file to copy
        found.extend((start, value) for value in _values(document))
    return found


PAGES = sorted(p for p in (ROOT / "docs").glob("*.md") if yaml_filters(p))


def test_the_rules_page_has_filters_to_check() -> None:
    assert any(page.name == "rules.md" for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_filter_of_the_pages_yaml_parses(page: Path) -> None:
    for line, text in yaml_filters(page):
        try:
            parse_filter(text)
        except ValueError as error:
            pytest.fail(f"{page.name}: the yaml block at line {line}: {text!r}: {error}")
