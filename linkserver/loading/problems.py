"""Problems found in configuration files, each at a file, line and column.

Readers never stop at the first problem: they record it in :class:`Problems`
and go on, so one run reports every problem of every file, raised together
as one :class:`ConfigError` of ``file:line:column: message`` strings.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from linkserver.core.errors import ConfigError


@attrs.frozen
class Location:
    """A 1-based position in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def seen_from(self, here: Location) -> str:
        """``line 3, column 5`` within the same file, ``file:3:5`` from another one."""
        if self.file == here.file:
            return f"line {self.line}, column {self.column}"
        return str(self)


class Problems:
    """Every problem found so far, reported together as one :class:`ConfigError`.

    Messages come out ordered by file (in the order the files were read), then
    line and column; an identical problem found twice (through a YAML alias) is
    reported once.
    """

    def __init__(self) -> None:
        self._found: dict[tuple[Location, str], None] = {}
        self._files: dict[str, int] = {}

    def file(self, name: str) -> None:
        self._files.setdefault(name, len(self._files))

    def add(self, where: Location, message: str) -> None:
        self.file(where.file)
        self._found[(where, message)] = None

    def __len__(self) -> int:
        return len(self._found)

    def messages(self) -> list[str]:
        ordered = sorted(self._found, key=lambda p: (self._files[p[0].file], p[0].line, p[0].column))
        return [f"{where}: {message}" for where, message in ordered]

    def raise_if_any(self) -> None:
        if self._found:
            raise ConfigError(self.messages())


def display_name(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when below it."""
    absolute = Path(os.path.abspath(path))
    for base in (Path.cwd(), Path.cwd().resolve()):
        try:
            return str(absolute.relative_to(base))
        except ValueError:
            continue
    return str(absolute)


def suggest(word: str, choices: Iterable[str], noun: str) -> str:
    """``; did you mean 'x'?`` or ``; <noun>: a, b, c`` to append to a message."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; {noun}: {', '.join(choices)}" if choices else f"; there are no {noun}"


def describe(value: Any) -> str:
    """A value as a message names it: ``the string 'yes'``, ``a list``..."""
    try:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return f"the boolean {str(value).lower()}"
        if isinstance(value, int):
            return f"the integer {shorten(str(value))}"
        if isinstance(value, float):
            return f"the number {value}"
        if isinstance(value, str):
            return f"the string {shorten(value, 60)!r}"
        if isinstance(value, list):
            return "a list"
        if isinstance(value, dict):
            return "a mapping"
        return f"a {type(value).__name__} value"
    except ValueError:  # an integer too long to print
        return f"a {type(value).__name__} value"


def shorten(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
