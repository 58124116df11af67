"""Compile an AST into nested closures that test one event.

Compilation happens once, when a filter is parsed; testing an event then
runs a few small Python functions and never walks the tree. The closures
follow these rules, so no comparison can raise on well-formed events:

- a value of the wrong type for the literal is unequal to it: ``==`` is
  false, ``!=`` is true, ordering comparisons (``< <= > >=``) are false;
- a missing data field, or a null value, is null: ``== null`` is true and
  ordering comparisons are false;
- ``data.FIELD`` reads the event's first record; ``data.T.SUB`` reads the
  first record of the nested table ``T`` in that record.

Booleans are not numbers here (``true == 1`` is false), unlike in Python.
"""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from linkserver.core.filters.ast import And, Compare, InList, Match, Node, Not, Operand, Or, as_timestamp
from linkserver.core.paths import compile_mask

Predicate = Callable[[Any], bool]
"""Takes an :class:`~linkserver.core.events.Event`, returns whether it matches."""

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NUMBERS = (int, float)
# Which values are equal to which literals: keys of the sets built for `in`.
_KINDS: dict[type, str] = {
    int: "number",
    float: "number",
    str: "string",
    bool: "boolean",
    type(None): "null",
    datetime: "datetime",
}


def compile_node(node: Node) -> Predicate:
    """A function ``event -> bool`` equivalent to ``node``."""
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, InList):
        return _in_list(node)
    if isinstance(node, Match):
        return _match(node)
    if isinstance(node, Not):
        inner = compile_node(node.item)
        return lambda event: not inner(event)
    if isinstance(node, And):
        return _all(tuple(compile_node(item) for item in node.items))
    if isinstance(node, Or):
        return _any(tuple(compile_node(item) for item in node.items))
    raise TypeError(f"not a filter node: {node!r}")


def getter(operand: Operand) -> Callable[[Any], Any]:
    """A function ``event -> value`` reading ``operand``; None for a missing data field."""
    if operand.name != "data":
        return operator.attrgetter(operand.name)
    first, *rest = operand.path
    if not rest:

        def read_field(event: Any) -> Any:
            data = event.data
            if data:
                record = data[0]
                if type(record) is dict:
                    return record.get(first)
            return None

        return read_field
    path = operand.path

    def read_path(event: Any) -> Any:
        value: Any = event.data
        for name in path:
            if isinstance(value, (tuple, list)):
                value = value[0] if value else None
            if not isinstance(value, dict):
                return None
            value = value.get(name)
        return value

    return read_path


def _compare(node: Compare) -> Predicate:
    op, value = node.op, node.value
    if node.operand.name == "level":
        return _LEVEL[op](int(value))  # type: ignore[arg-type]
    get = getter(node.operand)
    if value is None:
        if op == "==":
            return lambda event: get(event) is None
        return lambda event: get(event) is not None
    if isinstance(value, datetime):
        return _compare_moment(get, op, value, ())
    if isinstance(value, bool):
        return _compare_typed(get, op, value, (bool,))
    if isinstance(value, _NUMBERS):
        return _compare_typed(get, op, value, _NUMBERS)
    if node.operand.name == "data":
        moment = as_timestamp(value)
        if moment is not None:
            # A datetime field compares with the instant, a string field with the text.
            return _compare_moment(get, op, moment, (value,))
    return _compare_typed(get, op, value, (str,))


def _compare_typed(get: Callable[[Any], Any], op: str, literal: Any, types: tuple[type, ...]) -> Predicate:
    """Compare values whose exact type is one of ``types``; other values are unequal."""
    if op == "==":
        return lambda event: (value := get(event)).__class__ in types and value == literal
    if op == "!=":
        return lambda event: (value := get(event)).__class__ not in types or value != literal
    compare = _CMP[op]
    return lambda event: (value := get(event)).__class__ in types and compare(value, literal)


def _compare_moment(get: Callable[[Any], Any], op: str, moment: datetime, text: tuple[str, ...]) -> Predicate:
    """Compare datetimes with ``moment`` and, if ``text`` holds the literal, strings with it."""
    compare = _CMP[op]
    unequal = op == "!="

    def test(event: Any) -> bool:
        value = get(event)
        if isinstance(value, datetime):
            try:
                return compare(value, moment)
            except TypeError:  # a naive datetime cannot be ordered against an aware one
                return unequal
        if text and type(value) is str:
            return compare(value, text[0])
        return unequal

    return test


def _in_list(node: InList) -> Predicate:
    negated = node.negated
    if node.operand.name == "level":
        levels = frozenset(int(v) for v in node.values)  # type: ignore[arg-type]
        if negated:
            return lambda event: event.level not in levels
        return lambda event: event.level in levels
    keys = set()
    for value in node.values:
        keys.add((_KINDS[type(value)], value))
        if node.operand.name == "data":
            moment = as_timestamp(value)
            if moment is not None:
                keys.add(("datetime", moment))
    members = frozenset(keys)
    get = getter(node.operand)
    kinds = _KINDS

    def test(event: Any) -> bool:
        value = get(event)
        kind = kinds.get(type(value))
        if kind is None:
            return negated
        return ((kind, value) in members) is not negated

    return test


def _match(node: Match) -> Predicate:
    if node.kind == "mask":
        mask = compile_mask(node.pattern).matches
        return lambda event: type(context := event.context) is str and mask(context)
    if node.kind == "glob":
        find = re.compile(fnmatch.translate(node.pattern)).match
    else:
        find = re.compile(node.pattern).search
    get = getter(node.operand)
    return lambda event: type(value := get(event)) is str and find(value) is not None


def _all(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 2:
        first, second = tests
        return lambda event: first(event) and second(event)

    def test(event: Any) -> bool:
        for item in tests:  # noqa: SIM110 - a plain loop is faster than all() over a generator
            if not item(event):
                return False
        return True

    return test


def _any(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 2:
        first, second = tests
        return lambda event: first(event) or second(event)

    def test(event: Any) -> bool:
        for item in tests:  # noqa: SIM110 - a plain loop is faster than any() over a generator
            if item(event):
                return True
        return False

    return test


_LEVEL: dict[str, Callable[[int], Predicate]] = {
    "==": lambda level: lambda event: event.level == level,
    "!=": lambda level: lambda event: event.level != level,
    "<": lambda level: lambda event: event.level < level,
    "<=": lambda level: lambda event: event.level <= level,
    ">": lambda level: lambda event: event.level > level,
    ">=": lambda level: lambda event: event.level >= level,
}
