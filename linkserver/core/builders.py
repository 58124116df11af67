"""Straight-line builders for well-formed data tables: the fire path's validation.

:meth:`TableFormat.build` is general: defaults, coercions, nested tables,
every problem named. Most fires post exactly what the format wants (every
value already of its field's type), and for those a function generated for
the format checks the same rules without loops or calls per field. A fast
builder returns the records :meth:`TableFormat.build` would return, or
None for any input it does not handle or that is not valid; the caller
then uses :meth:`TableFormat.build`, which coerces or names the problems.
So the fast path never decides that an input is wrong.

Formats with nested tables, datetime fields or mutable defaults get no
fast builder (:func:`fast_builder` returns None).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from linkserver.core.checks import FieldType
from linkserver.core.formats import Field, TableFormat
from linkserver.core.records import DataTable

FastBuilder = Callable[[Any], DataTable | None]
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
    lines = ["def record(r):", "    used = 0"]
    names = []
    for index, field in enumerate(format.fields):
        value = f"v{index}"
        names.append(f"{field.name!r}: {value}")
        lines += [f"    if {field.name!r} in r:", f"        {value} = r[{field.name!r}]", "        used += 1"]
        checks = _checks(field, value, index, constants)
        if field.nullable:
            if checks:
                lines.append(f"        if {value} is not None and ({' or '.join(checks)}):")
                lines.append("            return _NO")
        else:
            lines.append(f"        if {' or '.join(checks)}:")
            lines.append("            return _NO")
        lines.append("    else:")
        if field.has_default:
            # build() passes a default through the field's check too (1 becomes 1.0)
            default = field.default
            constants[f"d{index}"] = None if default is None else field.checker()(default)
            lines.append(f"        {value} = d{index}")
        elif field.nullable:
            lines.append(f"        {value} = None")
        else:
            lines.append("        return _NO")
    lines += ["    if used != _len(r):", "        return _NO", f"    return {{{', '.join(names)}}}", ""]
    lines += _table(format)
    namespace = dict(constants)
    exec("\n".join(lines), namespace)  # noqa: S102 - the code is made here from validated names only
    build: FastBuilder = namespace["build"]
    return build


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
        constants[f"re{index}"] = re.compile(field.pattern).fullmatch
        checks.append(f"re{index}({value}) is None")
    if field.allowed is not None:
        constants[f"in{index}"] = frozenset(field.allowed)
        checks.append(f"{value} not in in{index}")
    return checks


def _table(format: TableFormat) -> list[str]:
    """``build(data)``: one mapping for single-record formats, else a list of them."""
    low, high = format.min_records, format.max_records
    if high == 1:
        return [
            "def build(data):",
            "    if type(data) is _dict:",
            "        found = record(data)",
            "        if found is not _NO:",
            "            return (found,)",
            "    return None",
        ]
    count_ok = f"{low} <= n" + (f" <= {high}" if high is not None else "")
    return [
        "def build(data):",
        "    if type(data) is _list or type(data) is _tuple:",
        "        n = _len(data)",
        "        if n == 1 and 1 >= " + str(low) + (f" and 1 <= {high}" if high is not None else "") + ":",
        "            first = data[0]",
        "            if type(first) is _dict:",
        "                found = record(first)",
        "                if found is not _NO:",
        "                    return (found,)",
        "            return None",
        f"        if {count_ok}:",
        "            out = []",
        "            for item in data:",
        "                if type(item) is not _dict:",
        "                    return None",
        "                found = record(item)",
        "                if found is _NO:",
        "                    return None",
        "                out.append(found)",
        "            return _tuple(out)",
        "    return None",
    ]


class _Refused:
    """The marker a record function returns for input the fast path leaves to the full build."""

    __slots__ = ()


_NO = _Refused()
