"""Check a parsed filter against the table format of the events it will see.

Parsing cannot know which data fields exist; this check can. It catches
typos (``data.temprature``) and comparisons that could never be true
(a string field against a number), so that a subscription or a YAML file
fails when it is written instead of silently matching nothing.
"""

from __future__ import annotations

import difflib

from linkserver.core.errors import FilterError
from linkserver.core.filters.ast import (
    And,
    Compare,
    InList,
    Leaf,
    Match,
    Node,
    Not,
    Or,
    Value,
    leaves,
    parse_timestamp,
)
from linkserver.core.formats import Field, FieldType, TableFormat
from linkserver.core.mask_sets import mask_within, masks_overlap
from linkserver.core.paths import compile_mask


def check_filter(node: Node, fmt: TableFormat, *, text: str = "", where: str = "") -> None:
    """Raise FilterError for the first data operand in ``node`` that does not fit ``fmt``.

    ``text`` is the expression (for the column marker), ``where`` names the
    event the filter is for and prefixes the message. Returns None if every
    ``data.FIELD`` exists in ``fmt`` and every literal can compare with its
    field's type.
    """
    for leaf in leaves(node):
        if leaf.operand.name == "data":
            field = _resolve(leaf, fmt, text, where)
            _check_leaf(leaf, field, text, where)


def _resolve(leaf: Leaf, fmt: TableFormat, text: str, where: str) -> Field:
    operand = leaf.operand
    current = fmt
    column = operand.column + len("data.")
    field: Field | None = None
    for index, name in enumerate(operand.path):
        field = current.field(name)
        shown = "data." + ".".join(operand.path[: index + 1])
        if field is None:
            known = current.field_names
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{shown[: -len(name)]}{close[0]}'?" if close else ""
            listing = f" (its fields: {', '.join(known)})" if known else " (it has no fields)"
            raise FilterError(
                f"{_prefix(where)}{shown} is not a field of the event format{hint}{listing}", text, column
            )
        if index < len(operand.path) - 1:
            if field.type is not FieldType.TABLE or field.format is None:
                raise FilterError(
                    f"{_prefix(where)}{shown} is {_article(field.type)} field; it has no sub-fields",
                    text,
                    column,
                )
            current = field.format
        column += len(name) + 1
    assert field is not None
    return field


def _check_leaf(leaf: Leaf, field: Field, text: str, where: str) -> None:
    operand = leaf.operand
    kind = field.type
    if kind is FieldType.TABLE:
        first = field.format.field_names[0] if field.format and field.format.field_names else "FIELD"
        raise FilterError(
            f"{_prefix(where)}{operand} is a table; compare one of its fields, e.g. {operand}.{first}",
            text,
            operand.column,
        )
    if isinstance(leaf, Match):
        if kind is not FieldType.STRING:
            op = "~" if leaf.kind != "regex" else "=~"
            raise FilterError(
                f"{_prefix(where)}'{op}' matches text, but {operand} is {_article(kind)} field",
                text,
                operand.column,
            )
        return
    values = (leaf.value,) if isinstance(leaf, Compare) else leaf.values if isinstance(leaf, InList) else ()
    labels = {label for _, label in field.labels or ()}
    for value in values:
        if type(value) is str and value in labels:
            continue  # a label: resolve_labels (core.filters.labels) turns it into its value
        problem = _mismatch(kind, value)
        if problem:
            if labels:
                problem += f" (its labels: {', '.join(sorted(labels))})"
            raise FilterError(
                f"{_prefix(where)}{operand} is {_article(kind)} field; it cannot be compared with {problem}",
                text,
                operand.column,
            )


def _mismatch(kind: FieldType, value: Value) -> str:
    """Why ``value`` cannot compare with a field of type ``kind``; "" if it can."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "" if kind is FieldType.BOOLEAN else f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return "" if kind in (FieldType.INTEGER, FieldType.FLOAT) else f"the number {value!r}"
    if isinstance(value, str):
        if kind is FieldType.STRING:
            return ""
        if kind is FieldType.DATETIME:
            try:
                parse_timestamp(value)
            except ValueError:
                example = "'2024-05-01T12:00:00Z'"
                return (
                    f"the string {value!r}; write an ISO-8601 date and time with a timezone, e.g. {example}"
                )
            return ""
        return f"the string {value!r}"
    return f"{value!r}"


def _article(kind: FieldType) -> str:
    name = str(kind)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def known_result(node: Node, known: dict[str, str], *, mask: str | None = None) -> bool | None:
    """What ``node`` says of every event whose operands in ``known`` have those values (``name``:
    the one event a rule watches) and, with ``mask``, whose context that mask matches (the
    rule's): True or False when that decides it, None when the rest of the event does. Only
    ``==``, ``!=``, ``in`` and ``not in`` of a known operand, and of the context under ``mask``
    its ``~`` masks, are decided; every other comparison is left undecided, so False means it
    can never hold."""
    if isinstance(node, And):
        results = [known_result(item, known, mask=mask) for item in node.items]
        return False if False in results else (True if all(r is True for r in results) else None)
    if isinstance(node, Or):
        results = [known_result(item, known, mask=mask) for item in node.items]
        return True if True in results else (False if all(r is False for r in results) else None)
    if isinstance(node, Not):
        inner = known_result(node.item, known, mask=mask)
        return None if inner is None else not inner
    operand = node.operand
    if operand.name == "context" and not operand.path and mask is not None:
        return _context_result(node, mask)
    if operand.path or operand.name not in known:
        return None
    value = known[operand.name]
    if isinstance(node, Compare) and node.op in ("==", "!=") and isinstance(node.value, str):
        return (value == node.value) is (node.op == "==")
    if isinstance(node, InList) and all(isinstance(v, str) for v in node.values):
        return (value in node.values) is not node.negated
    return None


def _context_result(node: Leaf, mask: str) -> bool | None:
    """``node`` on the context of an event under ``mask``, where the masks decide it."""
    if isinstance(node, Match):
        if node.kind != "mask":
            return None
        if not masks_overlap(mask, node.pattern):
            return False
        return True if mask_within(mask, node.pattern) else None
    if isinstance(node, Compare) and node.op in ("==", "!=") and isinstance(node.value, str):
        paths: tuple[Value, ...] = (node.value,)
        holds = node.op == "=="
    elif isinstance(node, InList) and all(isinstance(v, str) for v in node.values):
        paths, holds = node.values, not node.negated
    else:
        return None
    compiled = compile_mask(mask)
    if not any(compiled.matches(path) for path in paths if isinstance(path, str)):
        return not holds  # no context under the mask is one of them
    if compiled.exact_path is not None and compiled.exact_path in paths:
        return holds
    return None
