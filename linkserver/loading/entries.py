"""Reading a YAML mapping key by key, with typed getters that report wrong values."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import timedelta
from typing import Any

from yaml.nodes import MappingNode, Node, SequenceNode

from linkserver.core.durations import parse_duration
from linkserver.core.levels import Level, Permission
from linkserver.loading.problems import describe, suggest
from linkserver.loading.yamlnodes import (
    INVALID,
    MAP_TAG,
    MISSING,
    SEQ_TAG,
    Document,
    describe_node,
    is_null,
)


class Entries:
    """A YAML mapping read as ``key -> (key node, value node)``.

    Keys are taken as written (so ``on:`` is the name ``on``, not a boolean);
    duplicate keys and non-scalar keys are reported, ``<<`` merge keys are
    honoured. The typed getters report a wrong value at its node, set
    :attr:`bad` and return their default, so a reader can build nothing from
    a mapping with a bad value without causing follow-up errors.
    """

    def __init__(
        self, doc: Document, node: MappingNode | None, where: str, anchor: Node | None = None
    ) -> None:
        self.doc = doc
        self.node = node
        self.where = where
        self.anchor = node if node is not None else anchor  # where to report what is missing
        self.bad = False
        self.failed: set[str] = set()
        """The keys whose value was wrong (reported): checks that depend on them are left out."""
        self.items: dict[str, tuple[Node, Node]] = {}
        if node is not None:
            self.items, ok = doc.pairs(node, where)
            self.bad = not ok

    # -- structure ---------------------------------------------------------

    def drop(self, key: str) -> None:
        """Forget ``key`` and its subtree (read already), keeping where the mapping is for messages."""
        self.items.pop(key, None)
        if self.node is not None:
            # The mapping node holds every child: keep a childless stand-in with its marks.
            self.node = self.anchor = MappingNode(self.node.tag, [], self.node.start_mark, self.node.end_mark)

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def key_node(self, key: str) -> Node | None:
        pair = self.items.get(key)
        return pair[0] if pair else None

    def get(self, key: str) -> Node | None:
        """The value node of ``key``; None when absent."""
        pair = self.items.get(key)
        return pair[1] if pair else None

    def error(self, node: Node, message: str, key: str | None = None) -> None:
        """Report ``message`` at ``node``; ``key`` (if given) is the key whose value is wrong."""
        self.doc.error(node, message)
        self.bad = True
        if key is not None:
            self.failed.add(key)

    def check_keys(self, allowed: Collection[str]) -> None:
        """Report every key not in ``allowed``, with a "did you mean"."""
        for name, (key, _value) in self.items.items():
            if name not in allowed:
                self.doc.error(
                    key, f"unknown key {name!r} in {self.where}" + suggest(name, allowed, "valid keys")
                )

    def require(self, key: str) -> bool:
        if key in self.items:
            return True
        if self.anchor is not None:
            self.error(self.anchor, f"{self.where} has no {key!r}; add it")
        self.bad = True
        return False

    def report(self, problems: Iterable[tuple[str, str]], prefix: str = "") -> None:
        """Report core consistency problems ``(key, message)``, each at its key (or the mapping)."""
        for key, message in problems:
            at = self.key_node(key) or self.anchor
            if at is not None:
                self.doc.error(at, prefix + message)
            self.bad = True

    def mapping(self, key: str, where: str | None = None) -> Entries:
        """The mapping under ``key`` (empty when absent or null)."""
        return as_mapping(self.doc, self.get(key), where or f"{key!r} in {self.where}", parent=self)

    def sequence(self, key: str) -> list[Node]:
        """The items of the list under ``key`` (empty when absent or null)."""
        node = self.get(key)
        if is_null(node):
            return []
        assert node is not None
        if isinstance(node, SequenceNode) and node.tag == SEQ_TAG:
            return list(node.value)
        self.error(node, f"{key!r} in {self.where} must be a list, got {describe_node(node)}", key)
        return []

    # -- typed values --------------------------------------------------------

    def value(self, key: str, default: Any = MISSING) -> Any:
        node = self.get(key)
        if node is None:
            return default
        value = self.doc.plain(node)
        if value is INVALID:
            self.bad = True
            self.failed.add(key)
            return default
        return value

    def typed(
        self, key: str, default: Any, convert: Callable[[Any], Any], expected: str, *, nullable: bool = False
    ) -> Any:
        """``convert(value)`` of the value under ``key``; a wrong one is reported: ``must be <expected>``."""
        node = self.get(key)
        if node is None:
            return default
        value = self.doc.plain(node)
        if value is INVALID:
            self.bad = True
            self.failed.add(key)
            return default
        if value is None and nullable:
            return None
        try:
            return convert(value)
        except (ValueError, TypeError, OverflowError, ArithmeticError):
            self.error(node, f"{key!r} in {self.where} must be {expected}, got {describe(value)}")
            self.failed.add(key)
            return default

    def text(self, key: str, default: Any = MISSING, *, nullable: bool = False) -> Any:
        return self.typed(key, default, _string, "a string", nullable=nullable)

    def flag(self, key: str, default: Any = MISSING) -> Any:
        return self.typed(key, default, _boolean, "true or false")

    def integer(
        self,
        key: str,
        default: Any = MISSING,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        nullable: bool = False,
    ) -> Any:
        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
                raise ValueError
            return value

        expected = "an integer"
        if minimum is not None and maximum is not None:
            expected = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            expected = f"an integer >= {minimum}"
        return self.typed(
            key, default, convert, expected + (" or null" if nullable else ""), nullable=nullable
        )

    def number(self, key: str, default: Any = MISSING) -> Any:
        def convert(value: Any) -> int | float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise TypeError
            float(value)  # OverflowError for integers beyond any float
            return value

        return self.typed(key, default, convert, "a number")

    def duration(
        self, key: str, default: Any = MISSING, *, nullable: bool = False, positive: bool = True
    ) -> Any:
        def convert(value: Any) -> timedelta:
            if isinstance(value, bool):
                raise TypeError
            delta = parse_duration(value)
            if delta < timedelta(0) or (positive and delta == timedelta(0)):
                raise ValueError
            return delta

        expected = (
            "a positive duration such as 10d, 6h, 30m, 45s or 500ms"
            if positive
            else ("a duration such as 10d, 6h, 30m, 45s or 5ms")
        )
        return self.typed(key, default, convert, expected, nullable=nullable)

    def level(self, key: str, default: Any = MISSING) -> Any:
        return self.typed(key, default, Level.parse, _LEVELS)

    def permission(self, key: str, default: Any = MISSING) -> Any:
        return self.typed(key, default, Permission.parse, _PERMISSIONS)


_LEVELS = "one of " + ", ".join(m.name for m in Level)
_PERMISSIONS = "one of " + ", ".join(str(m) for m in Permission)


def as_mapping(doc: Document, node: Node | None, where: str, parent: Entries | None = None) -> Entries:
    """``node`` read as a mapping; null and absent read as an empty one, anything else is reported."""
    if is_null(node):
        return Entries(doc, None, where, anchor=node)
    assert node is not None
    if isinstance(node, MappingNode) and node.tag == MAP_TAG:
        return Entries(doc, node, where)
    doc.error(node, f"{where} must be a mapping, got {describe_node(node)}")
    entries = Entries(doc, None, where)
    entries.bad = True
    if parent is not None:
        parent.bad = True
    return entries


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value
