"""Translate context masks and filter expressions into SQL WHERE clauses.

:func:`translate` returns ``(clause, exact)``. ``clause`` (None means "no
restriction") never rejects an event that the Python filter accepts; when
``exact`` is False it may accept events the filter rejects, so the caller must
also test the results with :meth:`Filter.matches`. Exact clauses follow the
filter's two-valued logic to the letter: a null ``group`` is unequal to every
string, ``!=`` is the negation of ``==``, so every exact clause is NULL-free
and can be negated. Rules:

- event columns (context, name, level, id, created, group, author, category): exact,
  except ``=~`` (Python regexes are not SQL regexes) and globs with ``[``;
- ``data.FIELD`` (top level only), compared with a number below 2**53 in
  magnitude (``==``, ``!=``, ordering, ``in``): exact. The clause checks the
  JSON type first (``json_type``/``jsonb_typeof``: the filter's strict types,
  booleans are not numbers) and then compares numerically; below 2**53 the
  database's numbers (SQLite doubles and integers, PostgreSQL's decimal
  ``numeric`` of the text Python wrote) order exactly as Python's do. With a
  string that is not a timestamp: ``==``, ``!=`` and ``in`` exact (a JSON
  string type check, then the text); ordering a superset (stored text of
  timestamp shape reads back as a datetime, which never orders with a
  string), refined in Python. Anything else on data (larger numbers,
  nested paths, booleans, timestamps, null): none;
- ``not`` of an inexact clause: none (the negation of a superset is not one).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, false, func, literal, not_, or_, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from linkserver.core.filters import And, Compare, InList, Match, Node, Not, Or
from linkserver.core.filters.ast import as_timestamp
from linkserver.core.paths import compile_mask
from linkserver.history.schema import events

Clause = ColumnElement[bool]
Translation = tuple[Clause | None, bool]

Columns = Mapping[str, Any]
_NAMES = ("context", "name", "level", "id", "created", "group", "author", "category")
COLUMNS: Columns = {name: events.c[name] for name in _NAMES}


def unindexed(column: Any) -> Any:
    """``+column``: the same value, but SQLite will not pick an index for a term on it."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


UNINDEXED: Columns = {**COLUMNS, "context": unindexed(events.c.context), "name": unindexed(events.c.name)}
_NULLABLE = frozenset({"group", "author", "category"})
_TEXT = frozenset({"context", "name", "group", "author", "category"})
_NONE: Translation = (None, False)
_CMP = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def like_escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_range(column: Any, prefix: str) -> Clause:
    """Rows whose value starts with ``prefix`` (which ends with '.'), as an index range.

    A range rather than LIKE: it uses the index on SQLite without
    ``case_sensitive_like`` and on PostgreSQL with the "C" collation.
    """
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(column >= prefix, column < upper)


def mask_clause(text: str, column: Any = None) -> Translation:
    """The SQL for one context mask: ``(clause, exact)``; clause None means every context."""
    column = events.c.context if column is None else column
    mask = compile_mask(text)
    if mask.is_exact:
        return column == mask.exact_path, True
    segments = mask.segments
    first_wild = next(i for i, segment in enumerate(segments) if segment in ("*", "**"))
    prefix = ".".join(segments[:first_wild])
    rest = segments[first_wild:]
    if rest == ("**",):
        if not prefix:
            return None, True
        return or_(column == prefix, _prefix_range(column, prefix + ".")), True
    if rest == ("*",):
        if not prefix:
            return and_(column != "", column.not_like("%.%")), True
        # '*' is exactly one name: no further dot after the prefix.
        deeper = like_escape(prefix) + ".%.%"
        return and_(_prefix_range(column, prefix + "."), column.not_like(deeper, escape="\\")), True
    if not prefix:
        return _NONE
    clause = _prefix_range(column, prefix + ".")
    if all(segment == "**" for segment in rest):
        clause = or_(column == prefix, clause)
    return clause, False


def masks_clause(texts: tuple[str, ...], column: Any = None) -> Translation:
    """Any of several masks; an empty tuple matches nothing."""
    if not texts:
        return false(), True
    parts = [mask_clause(text, column) for text in texts]
    exact = all(ok for _, ok in parts)
    if any(clause is None for clause, _ in parts):
        # One mask allows every context: no SQL; exact only if that mask was exact.
        return None, any(clause is None and ok for clause, ok in parts) or exact
    return or_(*(clause for clause, _ in parts)), exact


def translate(node: Node, dialect: str, cols: Columns | None = None) -> Translation:
    """``(clause, exact)`` for a filter tree; ``cols`` replaces event columns (see :func:`unindexed`)."""
    cols = COLUMNS if cols is None else cols
    if isinstance(node, And):
        parts = [translate(item, dialect, cols) for item in node.items]
        clauses = [clause for clause, _ in parts if clause is not None]
        return (and_(*clauses) if clauses else None), all(ok for _, ok in parts)
    if isinstance(node, Or):
        parts = [translate(item, dialect, cols) for item in node.items]
        if any(clause is None for clause, _ in parts):
            return None, any(clause is None and ok for clause, ok in parts)
        return or_(*(clause for clause, _ in parts)), all(ok for _, ok in parts)  # type: ignore[misc]
    if isinstance(node, Not):
        clause, exact = translate(node.item, dialect, cols)
        if not exact:
            return _NONE
        return (false() if clause is None else not_(clause)), True
    if isinstance(node, Compare):
        return _compare(node, dialect, cols)
    if isinstance(node, InList):
        return _in_list(node, dialect, cols)
    if isinstance(node, Match):
        return _match(node, dialect, cols)
    return _NONE


def _ordered(column: Any, dialect: str) -> Any:
    # Python orders strings by code point; so do SQLite's BINARY and PostgreSQL's "C".
    return column.collate("C") if dialect == "postgresql" else column


def _compare(node: Compare, dialect: str, cols: Columns) -> Translation:
    name, op, value = node.operand.name, node.op, node.value
    if name == "data":
        return _data_compare(node, dialect)
    column = cols.get(name)
    if column is None:
        return _NONE
    nullable = name in _NULLABLE
    if value is None:
        if not nullable:
            return (false() if op == "==" else true()), True
        return (column.is_(None) if op == "==" else column.is_not(None)), True
    if name == "level":
        return _CMP[op](column, int(value)), True  # type: ignore[arg-type]
    if name == "id":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _mismatch(op)
        return _id_compare(cols["id"], op, value), True
    if name == "created":
        if not isinstance(value, datetime):
            return _mismatch(op)
        return _CMP[op](column, literal(value, events.c.created.type)), True
    if not isinstance(value, str):
        return _mismatch(op)
    if op == "==":
        clause = column == value
    elif op == "!=":
        clause = column != value
        return (or_(column.is_(None), clause) if nullable else clause), True
    else:
        clause = _CMP[op](_ordered(column, dialect), value)
    return (and_(column.is_not(None), clause) if nullable else clause), True


def _id_compare(column: Any, op: str, value: int | float) -> Clause:
    """``id op value`` in integers only: a bigint never meets a float's rounding."""
    if isinstance(value, float):
        if value.is_integer():
            value = int(value)
        elif op in ("==", "!="):
            return false() if op == "==" else true()
        elif op in ("<", "<="):
            op, value = "<=", math.floor(value)
        else:
            op, value = ">=", math.ceil(value)
    return _CMP[op](column, value)


def _mismatch(op: str) -> Translation:
    """A literal of the wrong type: never equal, never ordered."""
    return (true() if op == "!=" else false()), True


def _in_list(node: InList, dialect: str, cols: Columns) -> Translation:
    name, values, negated = node.operand.name, node.values, node.negated
    if name == "data":
        return _data_in(node, dialect)
    column = cols.get(name)
    if column is None:
        return _NONE
    if name == "level":
        members: list[Any] = [int(v) for v in values]  # type: ignore[arg-type]
    elif name == "id":
        members = [
            int(v)
            for v in values
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (isinstance(v, int) or v.is_integer())
        ]
    elif name == "created":
        members = [literal(v, events.c.created.type) for v in values if isinstance(v, datetime)]
    else:
        members = [v for v in values if isinstance(v, str)]
    clause: Clause = column.in_(members) if members else false()
    if name in _NULLABLE:
        if members:
            clause = and_(column.is_not(None), clause)
        if None in values:
            clause = or_(column.is_(None), clause)
    return (not_(clause) if negated else clause), True


def _match(node: Match, dialect: str, cols: Columns) -> Translation:
    name = node.operand.name
    if node.kind == "mask":
        return mask_clause(node.pattern, cols["context"]) if name == "context" else _NONE
    if node.kind != "glob" or name not in _TEXT or "[" in node.pattern:
        return _NONE
    column = cols[name]
    if dialect == "sqlite":
        # LIKE is case-insensitive on SQLite; GLOB is case-sensitive and, without
        # '[', means exactly what fnmatch means.
        clause = column.op("GLOB", is_comparison=True)(node.pattern)
    else:
        pattern = like_escape(node.pattern).replace("*", "%").replace("?", "_")
        clause = column.like(pattern, escape="\\")
    return (and_(column.is_not(None), clause) if name in _NULLABLE else clause), True


# -- data fields ---------------------------------------------------------------------

EXACT_NUMBERS = 1 << 53  # below it in magnitude, every backend orders numbers as Python does


def _plain_literal(value: Any) -> bool:
    """Numbers and strings that SQL compares as the filter does (strings: not timestamps)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return abs(value) < EXACT_NUMBERS
    return isinstance(value, str) and as_timestamp(value) is None


def _exact_literal(value: Any, op: str) -> bool:
    return not isinstance(value, str) or op in ("==", "!=")


def _data_compare(node: Compare, dialect: str) -> Translation:
    path, op, value = node.operand.path, node.op, node.value
    if len(path) != 1 or not _plain_literal(value):
        return _NONE
    if op == "!=":
        if not _exact_literal(value, op):
            return _NONE
        return not_(_data_leaf(path[0], "==", value, dialect)), True
    return _data_leaf(path[0], op, value, dialect), _exact_literal(value, op)


def _data_in(node: InList, dialect: str) -> Translation:
    path, values = node.operand.path, node.values
    if len(path) != 1 or not values or not all(_plain_literal(v) for v in values):
        return _NONE
    clause = or_(*(_data_leaf(path[0], "==", value, dialect) for value in values))
    exact = all(_exact_literal(value, "==") for value in values)
    if node.negated:
        return (not_(clause), True) if exact else _NONE
    return clause, exact


def _data_leaf(field: str, op: str, value: Any, dialect: str) -> Clause:
    """``data.field op value`` with the filter's types; NULL-free, so it can be negated."""
    data = events.c.data
    text = isinstance(value, str)
    if dialect == "sqlite":
        path = f'$[0]."{field}"'
        kind = func.ifnull(func.json_type(data, path), "")
        # json_extract gives TEXT for strings and numbers for numbers (and 1/0 for booleans,
        # which the type check keeps out).
        typed = kind == "text" if text else kind.in_(("integer", "real"))
        # The comparison first: SQLite parses the JSON once per call and stops at a false
        # operand, so most rows cost one parse.
        return and_(_CMP[op](func.json_extract(data, path), value), typed)
    element = func.jsonb_extract_path(data, "0", field)
    kind = func.coalesce(func.jsonb_typeof(element), "")
    if text:
        found = func.jsonb_extract_path_text(data, "0", field)
        compared = found == value if op == "==" else _CMP[op](found.collate("C"), value)
        return and_(compared, kind == "string")
    # jsonb compares numbers numerically (other types order apart from them).
    return and_(_CMP[op](element, cast(literal(json.dumps(value)), JSONB)), kind == "number")
