"""Context paths and context masks.

A path is dotted names, each ``[A-Za-z0-9_]+``; the root is the empty path,
shown and accepted as ``root``. A mask is a path pattern where ``*`` stands for
exactly one name and ``**`` for zero or more names.
"""

from __future__ import annotations

import functools
import re

from linkserver.core.errors import InvalidName

ROOT = ""
ROOT_NAME = "root"

NAME_PATTERN = "[A-Za-z0-9_]+"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: str) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a valid context or event name, else raise InvalidName."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidName(f"invalid {what} {name!r}: use letters, digits and '_' only")
    return name


@functools.lru_cache(maxsize=65536)
def parse_path(path: str) -> str:
    """Normalise a context path: ``root`` and ``""`` are the root; names are checked."""
    if not isinstance(path, str):
        raise InvalidName(f"invalid context path {path!r}: expected a dotted string")
    if path in (ROOT, ROOT_NAME):
        return ROOT
    for name in path.split("."):
        if _NAME.fullmatch(name) is None:
            raise InvalidName(
                f"invalid context path {path!r}: {name!r} is not a name "
                "(letters, digits and '_' separated by single dots)"
            )
    if path.split(".", 1)[0] == ROOT_NAME:
        raise InvalidName(f"invalid context path {path!r}: 'root' is reserved for the root context")
    return path


def join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def parent_of(path: str) -> str | None:
    """The parent's path, or None for the root."""
    if not path:
        return None
    head, _, _ = path.rpartition(".")
    return head


def name_of(path: str) -> str:
    return path.rpartition(".")[2]


def display(path: str) -> str:
    return path if path else ROOT_NAME


class Mask:
    """A compiled context mask. Compile once with :func:`compile_mask`, match often."""

    __slots__ = ("text", "segments", "_exact", "_regex", "specificity")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidName(f"invalid context mask {text!r}: expected a string")
        self.text = text
        if text in (ROOT, ROOT_NAME):
            self.segments: tuple[str, ...] = ()
        else:
            self.segments = tuple(text.split("."))
        pieces = []
        for segment in self.segments:
            if segment == "**":
                pieces.append(r"(?:\.[A-Za-z0-9_]+)*")
            elif segment == "*":
                pieces.append(r"\.[A-Za-z0-9_]+")
            elif _NAME.fullmatch(segment):
                pieces.append(r"\." + segment)
            else:
                raise InvalidName(
                    f"invalid context mask {text!r}: {segment!r} is neither a name, '*' nor '**'"
                )
        if "*" in text:
            self._exact: str | None = None
            self._regex: re.Pattern[str] | None = re.compile("".join(pieces))
        else:
            self._exact = parse_path(text)
            self._regex = None
        rank = {"**": 0, "*": 1}
        self.specificity = tuple(rank.get(s, 2) for s in self.segments)

    @property
    def is_exact(self) -> bool:
        return self._exact is not None

    @property
    def exact_path(self) -> str | None:
        """The one path this mask matches, if it has no wildcards."""
        return self._exact

    def matches(self, path: str) -> bool:
        if self._exact is not None:
            return path == self._exact
        assert self._regex is not None
        return self._regex.fullmatch("." + path if path else "") is not None

    def could_match_below(self, path: str) -> bool:
        """True if some context at or below ``path`` could match (prunes tree walks)."""
        names = path.split(".") if path else []
        for i, name in enumerate(names):
            if i >= len(self.segments):
                return False
            segment = self.segments[i]
            if segment == "**":
                return True
            if segment != "*" and segment != name:
                return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mask) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Mask({self.text!r})"

    def __str__(self) -> str:
        return self.text or ROOT_NAME


@functools.lru_cache(maxsize=4096)
def compile_mask(text: str) -> Mask:
    """Compile (and cache) a context mask."""
    return Mask(text)
