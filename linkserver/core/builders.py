"""Straight-line builders for well-formed data tables: the fire path's validation.

:meth:`TableFormat.build` is general: defaults, coercions, nested tables,
every problem named. Most fires post exactly what the format wants (every
value already of its field's type), and for those a function generated for
the format checks the same rules without loops or calls per field: a
one-record table inside ``build`` itself, the required fields read in one
``try`` block, and a pattern's regular expression run only for a string
the field has not yet seen match (each field remembers up to
:data:`MATCHES_KEPT` of them, see :class:`_Matches`). A fast builder
returns the records :meth:`TableFormat.build` would return, or None for
any input it does not handle or that is not valid; the caller then uses
:meth:`TableFormat.build`, which coerces or names the problems. So the
fast path never decides that an input is wrong.

Formats with nested tables, datetime fields or mutable defaults get no
fast builder (:func:`fast_builder` returns None).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from linkserver.core.checks import FieldType
from linkserver.core.formats import Field, TableFormat
from linkserver.core.records import DataTable

FastBuilder = Callable[[Any], DataTable | None]
MATCHES_KEPT = 256  # strings remembered per pattern-constrained field (see _Matches)
MATCH_KEPT_LENGTH = 100  # longer strings are matched every time, never kept
_SCALARS = {
    FieldType.STRING: "str",
    FieldType.INTEGER: "int",
    FieldType.FLOAT: "float",
    FieldType.BOOLEAN: "bool",
}


def fast_builder(format: TableFormat) -> FastBuilder | None:
    """A fast builder for ``format``, or None if the format is beyond one (see the module doc)."""
    if any(not _simple(field) for field in format.fields):
        return None
    constants: dict[str, Any] = {"_NO": _NO, "_len": len, "_dict": dict, "_list": list, "_tuple": tuple}
    body, result = _record(format, constants)
    lines = _table(format, body, result)
    if format.max_records != 1:  # lists of more than one record: checked by calls of record()
        lines += ["", "def record(r):", *_indented(body, "    ", "_NO"), f"    return {result}"]
    namespace = dict(constants)
    exec("\n".join(lines), namespace)  # noqa: S102 - the code is made here from validated names only
    build: FastBuilder = namespace["build"]
    return build


def _record(format: TableFormat, constants: dict[str, Any]) -> tuple[list[str], str]:
    """The checks of one record ``r`` (``{FAIL}`` where it is refused) and the record it makes.

    The required fields are read in one ``try`` block (a missing one is a KeyError); the
    others are looked up one by one and checked only when present (a default was checked
    when the builder was made).
    """
    required = [(i, f) for i, f in enumerate(format.fields) if not f.has_default and not f.nullable]
    lines: list[str] = []
    if required:
        lines.append("try:")
        lines += [f"    v{i} = r[{f.name!r}]" for i, f in required]
        lines += ["except KeyError:", "    return {FAIL}"]
    checks = [check for i, f in required for check in _checks(f, f"v{i}", i, constants)]
    optional = len(required) < len(format.fields)
    if optional:
        lines.append(f"used = {len(required)}")
    for index, field in enumerate(format.fields):
        if not field.has_default and not field.nullable:
            continue
        value = f"v{index}"
        lines += [f"if {field.name!r} in r:", f"    {value} = r[{field.name!r}]", "    used += 1"]
        own = _checks(field, value, index, constants)
        if field.nullable:
            if own:
                lines += [f"    if {value} is not None and ({' or '.join(own)}):", "        return {FAIL}"]
        else:
            lines += [f"    if {' or '.join(own)}:", "        return {FAIL}"]
        lines.append("else:")
        if field.has_default:
            # build() passes a default through the field's check too (1 becomes 1.0)
            default = field.default
            constants[f"d{index}"] = None if default is None else field.checker()(default)
            lines.append(f"    {value} = d{index}")
        else:
            lines.append(f"    {value} = None")
    checks.append(f"{'used' if optional else len(format.fields)} != _len(r)")
    lines += [f"if {' or '.join(checks)}:", "    return {FAIL}"]
    names = ", ".join(f"{field.name!r}: v{index}" for index, field in enumerate(format.fields))
    return lines, f"{{{names}}}"


def _indented(body: list[str], indent: str, fail: str) -> list[str]:
    return [indent + line.replace("{FAIL}", fail) for line in body]


def _simple(field: Field) -> bool:
    if field.type not in _SCALARS or field.format is not None:
        return False
    default = field.default
    return not field.has_default or default is None or type(default) in (str, int, float, bool)


def _checks(field: Field, value: str, index: int, constants: dict[str, Any]) -> list[str]:
    """Conditions that are true when the value is NOT what the fast path accepts."""
    kind = field.type
    checks = [f"type({value}) is not {_SCALARS[kind]}"]
    if kind is FieldType.FLOAT:
        checks.append(f"{value} - {value} != 0.0")  # NaN or an infinity
    measure = f"_len({value})" if kind is FieldType.STRING else value
    if kind is not FieldType.BOOLEAN:
        if field.min is not None:
            constants[f"lo{index}"] = field.min
            checks.append(f"{measure} < lo{index}")
        if field.max is not None:
            constants[f"hi{index}"] = field.max
            checks.append(f"{measure} > hi{index}")
    if kind is FieldType.STRING and field.pattern is not None:
        matches = _Matches(field.pattern)
        constants[f"seen{index}"], constants[f"match{index}"] = matches.seen, matches
        checks.append(f"({value} not in seen{index} and not match{index}({value}))")
    if field.allowed is not None:
        constants[f"in{index}"] = frozenset(field.allowed)
        checks.append(f"{value} not in in{index}")
    return checks


def _table(format: TableFormat, body: list[str], result: str) -> list[str]:
    """``build(data)``: one mapping for single-record formats, else a list of them. One record
    is checked inline (``body``, :func:`_record`'s), more by calls of ``record``."""
    low, high = format.min_records, format.max_records
    if high == 1:
        return [
            "def build(data):",
            "    if type(data) is not _dict:",
            "        return None",
            "    r = data",
            *_indented(body, "    ", "None"),
            f"    return ({result},)",
        ]
    lines = [
        "def build(data):",
        "    if type(data) is not _list and type(data) is not _tuple:",
        "        return None",
    ]
    lines.append("    n = _len(data)")
    if low <= 1 and (high is None or high >= 1):
        lines += [
            "    if n == 1:",
            "        r = data[0]",
            "        if type(r) is not _dict:",
            "            return None",
            *_indented(body, "        ", "None"),
            f"        return ({result},)",
        ]
    count_ok = f"{low} <= n" + (f" <= {high}" if high is not None else "")
    return lines + [
        f"    if not {count_ok}:",
        "        return None",
        "    out = []",
        "    for item in data:",
        "        if type(item) is not _dict:",
        "            return None",
        "        found = record(item)",
        "        if found is _NO:",
        "            return None",
        "        out.append(found)",
        "    return _tuple(out)",
    ]


class _Matches:
    """A field's pattern, and up to :data:`MATCHES_KEPT` strings it fully matched.

    Called with a string the pattern was not yet seen to match: True when it matches. Fires
    mostly repeat a few values per field (quantity "temperature"), and a regular expression's
    fullmatch costs more than the rest of a record's checks; a string in ``seen`` skips it.
    Strings are immutable, so one that matched once always does. ``seen`` never grows past
    ``MATCHES_KEPT`` (it stops taking more; the lock keeps two threads from both adding the
    last one), and holds strings of at most ``MATCH_KEPT_LENGTH`` characters.
    """

    __slots__ = ("_fullmatch", "seen", "_lock")

    def __init__(self, pattern: str) -> None:
        self._fullmatch = re.compile(pattern).fullmatch
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> bool:
        if self._fullmatch(value) is None:
            return False
        if len(self.seen) < MATCHES_KEPT and len(value) <= MATCH_KEPT_LENGTH:
            with self._lock:
                if len(self.seen) < MATCHES_KEPT:
                    self.seen.add(value)
        return True


class _Refused:
    """The marker a record function returns for input the fast path leaves to the full build."""

    __slots__ = ()


_NO = _Refused()
