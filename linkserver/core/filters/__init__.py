"""The filter expression language: ``level >= WARNING and data.user != "root"``.

Parse once with :func:`parse_filter`, then test events with
:meth:`Filter.matches`; the language is described in ``docs/filters.md``.
Nothing here uses ``eval``: expressions are parsed by a small
recursive-descent parser and compiled to closures.
"""

from linkserver.core.filters.ast import (
    And,
    Compare,
    InList,
    Match,
    Node,
    Not,
    Operand,
    Or,
    Value,
    leaves,
)
from linkserver.core.filters.expression import Filter, parse_filter
from linkserver.core.filters.lexer import MAX_LENGTH
from linkserver.core.filters.parser import MAX_DEPTH

__all__ = [
    # Parsing and testing
    "Filter",
    "parse_filter",
    "MAX_LENGTH",
    "MAX_DEPTH",
    # The tree, for translators (SQL, brokers)
    "Node",
    "Value",
    "Operand",
    "Compare",
    "InList",
    "Match",
    "And",
    "Or",
    "Not",
    "leaves",
]
