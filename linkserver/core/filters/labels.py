"""Value labels in filters: ``data.status == "down"`` where ``status`` is stored as 2.

A coded field (``labels: {1: up, 2: down}``) stores the value; operators think
in labels. Events do not carry their definition's labels, so a filter cannot
look a label up while it tests an event: :func:`resolve_labels` rewrites it
once, when it is compiled for the formats of the events it will see
(a subscription, a history query), turning each label literal compared with
a labelled field into the value(s) it stands for. The literal itself is kept
in the rewritten comparison, so a field that is plain text in some of those
formats still matches it as text.

When the formats give one label different values (``down`` is 2 in one and 0
in another), the filter matches any of them.

:func:`bind_filter` is the one way every place that takes a filter expression
fits it to the events it will test (subscriptions, history and alarm queries,
bridges' ``select``, alert rules' ``filter``/``open``/``close``, state-machine
guards): checked against their definitions, then its labels resolved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from linkserver.core.checks import FieldType
from linkserver.core.filters.ast import And, Compare, InList, Leaf, Node, Not, Or, Value
from linkserver.core.filters.expression import Filter
from linkserver.core.formats import Field, TableFormat

if TYPE_CHECKING:
    from linkserver.core.definitions import EventDefinition

_ORDERINGS = frozenset(("<", "<=", ">", ">="))


def field_at(fmt: TableFormat, path: tuple[str, ...]) -> Field | None:
    """The field ``data.PATH`` names in ``fmt`` (through nested tables), or None."""
    current: TableFormat | None = fmt
    field = None
    for name in path:
        if current is None:
            return None
        field = current.field(name)
        if field is None:
            return None
        current = field.format if field.type is FieldType.TABLE else None
    return field


def label_values(fields: Iterable[Field], literal: Value) -> tuple[Value, ...]:
    """The values ``literal`` is the label of in any of ``fields`` (empty: it is no label)."""
    if type(literal) is not str:
        return ()
    found: list[Value] = []
    for field in fields:
        for value, label in field.labels or ():
            if label == literal and value not in found:
                found.append(value)
    return tuple(found)


def bind_filter(filter: Filter, definitions: Iterable[EventDefinition], what: str) -> Filter:
    """``filter`` fitted to the events of ``definitions`` (those it can ever test): FilterError
    unless it fits one of them (an unknown field, a literal its field cannot compare with,
    such as a word that is none of an integer field's labels; see :meth:`Filter.check_any`,
    ``what`` names the events for its message), else the filter with its value labels
    resolved by :func:`resolve_labels` (the same object when there are none)."""
    definitions = list(definitions)
    filter.check_any(definitions, what)
    return resolve_labels(filter, (definition.format for definition in definitions))


def resolve_labels(filter: Filter, formats: Iterable[TableFormat]) -> Filter:
    """``filter`` with label literals replaced by what they stand for in ``formats``; the same
    object when it compares no labelled field with a label (the common case)."""
    if not filter.data_fields():
        return filter
    formats = tuple({id(f): f for f in formats}.values())
    labelled: dict[tuple[str, ...], list[Field]] = {}

    def fields(path: tuple[str, ...]) -> list[Field]:
        if path not in labelled:
            found = (field_at(fmt, path) for fmt in formats)
            labelled[path] = [f for f in found if f is not None and f.labels]
        return labelled[path]

    ast = _rewrite(filter.ast, fields)
    return filter if ast == filter.ast else Filter(filter.text, ast)


def _rewrite(node: Node, fields: object) -> Node:
    if isinstance(node, (And, Or)):
        return type(node)(tuple(_rewrite(item, fields) for item in node.items))
    if isinstance(node, Not):
        return Not(_rewrite(node.item, fields))
    return _leaf(node, fields)  # type: ignore[arg-type]


def _leaf(leaf: Leaf, fields: object) -> Node:
    operand = leaf.operand
    if operand.name != "data":
        return leaf
    candidates = fields(operand.path)  # type: ignore[operator]
    if not candidates:
        return leaf
    if isinstance(leaf, Compare):
        values = label_values(candidates, leaf.value)
        if not values:
            return leaf
        if leaf.op in _ORDERINGS:
            return Compare(operand, leaf.op, values[0]) if len(values) == 1 else leaf
        if leaf.op not in ("==", "!="):
            return leaf
        return InList(operand, (leaf.value, *values), negated=leaf.op == "!=")
    if isinstance(leaf, InList):
        out: list[Value] = []
        seen: set[tuple[type, Value]] = set()
        for value in leaf.values:
            for item in (value, *label_values(candidates, value)):
                if (type(item), item) not in seen:
                    seen.add((type(item), item))
                    out.append(item)
        return leaf if len(out) == len(leaf.values) else InList(operand, tuple(out), leaf.negated)
    return leaf
