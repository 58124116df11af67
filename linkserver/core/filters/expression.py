"""The :class:`Filter` object: a parsed, compiled filter expression."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from linkserver.core.errors import FilterError
from linkserver.core.filters.ast import Node, leaves
from linkserver.core.filters.check import check_filter
from linkserver.core.filters.evaluate import Predicate, compile_node
from linkserver.core.filters.parser import parse

if TYPE_CHECKING:
    from collections.abc import Iterable

    from linkserver.core.definitions import EventDefinition
    from linkserver.core.events import Event
    from linkserver.core.formats import TableFormat


class Filter:
    """A filter expression, parsed and compiled once; immutable.

    ``text`` is the expression as written, ``ast`` its tree (equal filters
    have equal trees, whatever their spacing). :meth:`matches` never raises.
    """

    __slots__ = ("text", "ast", "_test", "__weakref__")

    text: str
    ast: Node
    _test: Predicate

    def __init__(self, text: str, ast: Node) -> None:
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "ast", ast)
        object.__setattr__(self, "_test", compile_node(ast))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Filter is immutable; cannot set {name!r}")

    def matches(self, event: Event) -> bool:
        """True if ``event`` satisfies the expression. Never raises: a malformed event is no match."""
        try:
            return self._test(event)
        except Exception:
            return False

    __call__ = matches

    def data_fields(self) -> frozenset[str]:
        """The top-level data field names the expression reads (``data.t.x`` gives ``t``)."""
        return frozenset(leaf.operand.path[0] for leaf in leaves(self.ast) if leaf.operand.name == "data")

    def check(self, fmt: TableFormat, *, where: str = "") -> None:
        """Raise FilterError unless every ``data.FIELD`` exists in ``fmt`` and fits its type.

        ``where`` names the event the filter is for (e.g. ``devices.plc7/alarm``)
        and starts the message. An unknown field's message suggests the closest
        known name.
        """
        check_filter(self.ast, fmt, text=self.text, where=where)

    def check_any(self, definitions: Iterable[EventDefinition], what: str) -> None:
        """Raise FilterError unless the expression fits at least one of ``definitions``.

        What a subscription and a history query both check: a filter that reads
        ``data.FIELD`` must be able to match some event they can see. ``what``
        names them (``'measurement' under 'devices.**'``) for the message when
        none has any data fields. Of the definitions' errors, the first that suggests a
        field name is raised, else the first.
        """
        if not self.data_fields():
            return
        errors: list[FilterError] = []
        for definition in definitions:
            try:
                self.check(definition.format, where=f"event {definition.name!r}")
                return
            except FilterError as exc:
                errors.append(exc)
        if errors:  # the most helpful: one that suggests a field, else the first
            raise next((e for e in errors if "did you mean" in e.message), errors[0])
        raise FilterError(f"filter reads data fields but no event {what} has any")

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Closures do not pickle; the text does, and parsing it again gives an equal filter.
        return (parse_filter, (self.text,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Filter) and other.ast == self.ast

    def __hash__(self) -> int:
        return hash(self.ast)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"

    def __str__(self) -> str:
        return self.text


def parse_filter(text: str) -> Filter:
    """Parse and compile ``text``. Raises FilterError saying what is wrong and at which column."""
    if not isinstance(text, str):
        raise FilterError(f"a filter expression must be a string, not {type(text).__name__}")
    return _parse_cached(text)


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> Filter:
    return Filter(text, parse(text))
