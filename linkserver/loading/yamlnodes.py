"""YAML documents as position-carrying nodes.

Files are *composed* (never loaded wholesale) with :class:`YamlLoader`, so
every value keeps its line and column; scalars are then constructed one at
a time by the safe constructor. :class:`YamlLoader` is libyaml's parser
(``yaml.CParser``, ten times faster than the pure-Python one on large
definition sets; its nodes carry the same marks) when PyYAML was built with
it, the pure-Python :class:`yaml.SafeLoader` otherwise; both resolve
scalars the same way (the booleans below).
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
import yaml.constructor
import yaml.resolver

try:
    import yaml.cyaml
except ImportError:  # pragma: no cover - PyYAML without libyaml
    pass
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


_IMPLICIT = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class PureYamlLoader(yaml.SafeLoader):
    """The pure-Python composer (used when PyYAML has no libyaml), resolving like YamlLoader.

    Booleans are ``true`` and ``false`` only (as in YAML 1.2): ``yes``, ``no``,
    ``on`` and ``off`` stay strings, so ``allowed: [on, off]`` means two states.
    """

    yaml_implicit_resolvers = _IMPLICIT


if getattr(yaml, "__with_libyaml__", False):

    class CYamlLoader(yaml.cyaml.CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
        """libyaml's composer, resolving scalars like :class:`PureYamlLoader`."""

        yaml_implicit_resolvers = _IMPLICIT

        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self._tags: dict[str, str] = {}

        # The resolver is called from C for every node; with no path resolvers
        # the tag of a plain scalar depends on its text alone, and a file
        # repeats the same few texts (keys, types, flags) all the time.
        def resolve(self, kind: type, value: Any, implicit: Any) -> str:
            if kind is ScalarNode:
                if not implicit[0]:
                    return self.DEFAULT_SCALAR_TAG
                tag = self._tags.get(value)
                if tag is None:
                    tag = self._tags[value] = super().resolve(kind, value, implicit)
                return tag
            return super().resolve(kind, value, implicit)

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            pass

        def ascend_resolver(self) -> None:
            pass

    YamlLoader: type = CYamlLoader
else:  # pragma: no cover - PyYAML built without libyaml
    YamlLoader = PureYamlLoader

for _loader in {PureYamlLoader, YamlLoader}:
    _loader.add_implicit_resolver(  # type: ignore[attr-defined]
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )

STR_TAG = "tag:yaml.org,2002:str"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALARS = yaml.constructor.SafeConstructor.yaml_constructors


def construct_scalar(node: ScalarNode) -> Any:
    """The Python value of a scalar node, by the safe constructor; raises its errors."""
    if node.tag == STR_TAG:
        return node.value
    construct = _SCALARS.get(node.tag)
    if construct is None:
        raise yaml.constructor.ConstructorError(
            None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark
        )
    return construct(_CONSTRUCTOR, node)


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

    def __init__(self, name: str, root: Node | None, problems: Problems) -> None:
        self.name = name
        self.root = root
        self.problems = problems
        self._plain: dict[int, Any] = {}
        self._active: set[int] = set()

    def release(self) -> None:
        """Forget the node tree (readers keep only the nodes they still need), to free memory."""
        self.root = None
        self._plain.clear()

    def at(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.name, mark.line + 1, mark.column + 1)

    def error(self, node: Node, message: str) -> None:
        self.problems.add(self.at(node), message)

    def plain(self, node: Node) -> Any:
        """The Python value of a node (scalars, lists, mappings); INVALID after reporting a problem."""
        if isinstance(node, ScalarNode):
            try:
                return construct_scalar(node)
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
            result: Any = INVALID
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
        except RecursionError:
            self.error(node, "this value is nested too deeply; flatten it")
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
        position, character = exc.position, exc.character
        if isinstance(character, int):
            # libyaml reports the character's code and its offset in the UTF-8 bytes.
            position = len(text.encode("utf-8")[:position].decode("utf-8", errors="ignore"))
            character = chr(character)
        before = text[:position]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1) + 1
        problems.add(
            Location(name, line, column),
            f"invalid YAML: character {character!r} is not allowed; {exc.reason}",
        )
        return None
    except RecursionError:
        problems.add(Location(name, 1, 1), "invalid YAML: the document is nested too deeply")
        return None
    return Document(name, root, problems)


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


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a definition set is read.

    Reading makes millions of short-lived, acyclic objects (nodes, marks,
    entries) that reference counting frees; the collector would walk all the
    long-lived ones over and over (a quarter of the time of a large set).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
