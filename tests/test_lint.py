"""The tree stays clean: ruff (lint and format) over everything, mypy over core."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return path


def test_ruff_finds_nothing():
    result = subprocess.run(
        [tool("ruff"), "check", "linkserver", "tests", "tools"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_everything_as_it_is():
    result = subprocess.run(
        [tool("ruff"), "format", "--check", "linkserver", "tests", "tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        "run `ruff format linkserver tests tools`:\n" + result.stdout + result.stderr
    )


def test_core_type_checks():
    result = subprocess.run([tool("mypy"), "linkserver/core"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_imports_no_io_libraries():
    forbidden = (
        "sqlalchemy",
        "asyncio",
        "socket",
        "apscheduler",
        "prompt_toolkit",
        "yaml",
        "threading.Thread",
    )
    for path in (ROOT / "linkserver" / "core").rglob("*.py"):
        text = path.read_text()
        for name in forbidden:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path} uses {name}"
