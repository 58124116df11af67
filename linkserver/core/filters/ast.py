"""The abstract syntax tree of a filter expression.

The tree is public and immutable so that other layers (history's SQL
translation, bridges) can walk it. Literal values are already converted to
what they are compared with: level literals are :class:`Level` members,
``created`` literals timezone-aware UTC datetimes, ``context`` literals
normalised paths (``root`` is ``""``). Equality ignores source columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import attrs

from linkserver.core.levels import Level

OPERAND_NAMES = ("context", "name", "level", "group", "author", "category", "created", "id", "data")
"""Every name an operand may have."""

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
ORDERINGS = ("<", "<=", ">", ">=")
MATCH_KINDS = ("mask", "glob", "regex")

Value = str | int | float | bool | Level | datetime | None
"""A literal: what an operand is compared with."""


@attrs.frozen
class Operand:
    """What an expression reads from an event.

    ``name`` is one of :data:`OPERAND_NAMES`; ``path`` is the data field path
    for ``data`` (``data.a.b`` is ``("a", "b")``) and empty otherwise.
    """

    name: str
    path: tuple[str, ...] = ()
    column: int = attrs.field(default=0, eq=False, repr=False)

    def __str__(self) -> str:
        return ".".join((self.name, *self.path))


@attrs.frozen
class Compare:
    """``operand op value``; ``op`` is one of :data:`COMPARISONS`."""

    operand: Operand
    op: str
    value: Value


@attrs.frozen
class InList:
    """``operand in [values]``, or ``not in`` when ``negated``."""

    operand: Operand
    values: tuple[Value, ...]
    negated: bool = False


@attrs.frozen
class Match:
    """A string match. ``kind`` is ``mask`` (context masks), ``glob`` or ``regex``."""

    operand: Operand
    kind: str
    pattern: str


@attrs.frozen
class And:
    items: tuple[Node, ...]


@attrs.frozen
class Or:
    items: tuple[Node, ...]


@attrs.frozen
class Not:
    item: Node


Node = Compare | InList | Match | And | Or | Not
Leaf = Compare | InList | Match


def parse_timestamp(text: str) -> datetime:
    """A timezone-aware UTC datetime from ISO-8601 text; ValueError says what is wrong."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date and time") from None
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(f"{text!r} has no timezone; add one, e.g. 'Z' or '+00:00'")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of the range of dates") from None


def as_timestamp(value: object) -> datetime | None:
    """``value`` as an aware UTC datetime if it is ISO-8601 text with a timezone, else None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def leaves(node: Node) -> Iterator[Leaf]:
    """Every comparison in ``node``, in source order."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (And, Or)):
            stack.extend(reversed(current.items))
        elif isinstance(current, Not):
            stack.append(current.item)
        else:
            yield current
