"""docs/yaml.md has a heading for every section of the server configuration the reader knows."""

from __future__ import annotations

import re
from pathlib import Path

import linkserver.loading  # noqa: F401 - registers every section
from linkserver.loading.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[2]


def test_every_configuration_section_is_in_the_yaml_reference() -> None:
    headings = set(re.findall(r"^### `(\w+)`", (ROOT / "docs" / "yaml.md").read_text(), re.M))
    assert sorted(set(SECTIONS) - headings) == []
