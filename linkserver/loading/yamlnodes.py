"""YAML documents as position-carrying nodes.

Files are *composed* (never loaded wholesale) with :class:`YamlLoader`, a
:class:`yaml.SafeLoader` subclass, so every value keeps its line and column;
scalars are then constructed one at a time by the same safe constructor.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from linkserver.loading.problems import Location, Problems, display_name, shorten

MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Returned by the getters for an absent key that has no default."""

INVALID: Any = type("_Invalid", (), {"__repr__": lambda self: "INVALID"})()
"""A value that could not be read; its problem is already recorded."""


class YamlLoader(yaml.SafeLoader):
    """The safe loader every LinkServer file is composed with; it builds plain scalars only.

    Booleans are ``true`` and ``false`` only (as in YAML 1.2): ``yes``, ``no``,
    ``on`` and ``off`` stay strings, so ``allowed: [on, off]`` means two states.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


_SCALAR_KINDS = {"str": "the string", "int": "the integer", "float": "the number", "bool": "the boolean"}


def describe_node(node: Node) -> str:
    """Like :func:`describe`, from the node alone (nothing is constructed)."""
    if isinstance(node, SequenceNode):
        return "a list" if node.tag == SEQ_TAG else f"a list tagged {node.tag!r}"
    if isinstance(node, MappingNode):
        return "a mapping" if node.tag == MAP_TAG else f"a mapping tagged {node.tag!r}"
    if node.tag == NULL_TAG:
        return "null"
    kind = _SCALAR_KINDS.get(node.tag.rpartition(":")[2])
    if kind is None:
        return f"the value {node.value!r}"
    return f"{kind} {node.value!r}" if kind == "the string" else f"{kind} {node.value}"


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == NULL_TAG)


class Document:
    """One parsed file: its name for messages, its root node (None when empty)."""

    def __init__(self, name: str, root: Node | None, loader: YamlLoader, problems: Problems) -> None:
        self.name = name
        self.root = root
        self.problems = problems
        self._loader = loader
        self._plain: dict[int, Any] = {}
        self._active: set[int] = set()

    def at(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.name, mark.line + 1, mark.column + 1)

    def error(self, node: Node, message: str) -> None:
        self.problems.add(self.at(node), message)

    def plain(self, node: Node) -> Any:
        """The Python value of a node (scalars, lists, mappings); INVALID after reporting a problem."""
        if isinstance(node, ScalarNode):
            try:
                return self._loader.construct_object(node, deep=True)
            except yaml.MarkedYAMLError as exc:
                self.error(node, f"invalid value {shorten(node.value)!r}: {exc.problem}")
            except Exception as exc:  # the safe constructor's ValueErrors, e.g. 2024-02-30
                reason = str(exc) if len(str(exc)) < 200 else type(exc).__name__
                self.error(node, f"invalid value {shorten(node.value)!r}: {reason}")
            return INVALID
        key = id(node)
        if key in self._plain:
            return self._plain[key]
        if key in self._active:
            self.error(node, "this alias refers to a value that contains it; remove the recursion")
            return INVALID
        self._active.add(key)
        try:
            result: Any
            if isinstance(node, SequenceNode) and node.tag == SEQ_TAG:
                result = [self.plain(item) for item in node.value]
                if any(item is INVALID for item in result):
                    result = INVALID
            elif isinstance(node, MappingNode) and node.tag == MAP_TAG:
                result = {}
                for key_node, value_node in self.pairs(node, "this mapping")[0].values():
                    name, value = self.plain(key_node), self.plain(value_node)
                    if name is INVALID or value is INVALID:
                        result = INVALID
                    elif result is not INVALID:
                        result[name] = value
            else:
                self.error(node, f"unsupported tag {node.tag!r}; remove it")
                result = INVALID
        finally:
            self._active.discard(key)
        self._plain[key] = result
        return result

    def pairs(self, node: MappingNode, where: str) -> tuple[dict[str, tuple[Node, Node]], bool]:
        """A mapping's entries by key as written, ``<<`` merges applied, and whether all went well.

        Duplicate keys and keys that are not plain scalars are reported and left out.
        """
        flag = [True]
        return self._pairs(node, where, set(), flag), flag[0]

    def _pairs(
        self, node: MappingNode, where: str, seen: set[int], flag: list[bool]
    ) -> dict[str, tuple[Node, Node]]:
        seen = seen | {id(node)}
        merged: dict[str, tuple[Node, Node]] = {}
        own: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                sources = value.value if isinstance(value, SequenceNode) else [value]
                for source in sources:
                    if not isinstance(source, MappingNode) or id(source) in seen:
                        self.error(
                            value, "'<<' must merge a mapping (or a list of mappings) not containing it"
                        )
                        flag[0] = False
                        continue
                    for name, pair in self._pairs(source, where, seen, flag).items():
                        merged.setdefault(name, pair)
                continue
            if not isinstance(key, ScalarNode):
                self.error(key, f"keys in {where} must be plain names, not {describe_node(key)}")
                flag[0] = False
                continue
            first = own.get(key.value)
            if first is not None:
                there = self.at(first[0]).seen_from(self.at(key))
                self.error(key, f"duplicate key {key.value!r} in {where}; the first is at {there}")
                flag[0] = False
                continue
            own[key.value] = (key, value)
        merged.update(own)
        return merged


def parse(name: str, text: str, problems: Problems) -> Document | None:
    """Compose ``text``; on a YAML syntax error record it (with its mark) and return None."""
    problems.file(name)
    try:
        loader = YamlLoader(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context}"
        if exc.context and exc.context_mark and exc.problem:
            cm = exc.context_mark
            message += f" ({exc.context} at line {cm.line + 1}, column {cm.column + 1})"
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.add(Location(name, line, column), message)
        return None
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        problems.add(
            Location(name, line, column),
            f"invalid YAML: character {exc.character!r} is not allowed; {exc.reason}",
        )
        return None
    except RecursionError:
        problems.add(Location(name, 1, 1), "invalid YAML: the document is nested too deeply")
        return None
    return Document(name, root, loader, problems)


def read(path: Path, problems: Problems) -> Document | None:
    """Read and compose one file; unreadable files and bad encodings are problems."""
    name = display_name(path)
    problems.file(name)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        problems.add(Location(name, 1, 1), "file not found")
        return None
    except OSError as exc:
        problems.add(Location(name, 1, 1), f"cannot read the file: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError as exc:
        problems.add(Location(name, 1, 1), f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8")
        return None
    return parse(name, text, problems)
