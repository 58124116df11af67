"""Checkers for single values of a table format's fields.

``make_checker`` compiles a field's type and limits once into a small closure
that returns the (safely coerced) value or raises InvalidValue; the format
runs these on every fire, so they do as little as possible.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from linkserver.core.errors import InvalidDefinition

UTC = UTC


class FieldType(enum.Enum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TABLE = "table"

    @classmethod
    def parse(cls, value: object) -> FieldType:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            found = _TYPE_NAMES.get(value.lower())
            if found is not None:
                return found
        raise InvalidDefinition(f"unknown field type {value!r}; use one of {', '.join(m.value for m in cls)}")

    def __str__(self) -> str:
        return self.value


_TYPE_NAMES = {
    **{member.value: member for member in FieldType},
    "str": FieldType.STRING,
    "int": FieldType.INTEGER,
    "bool": FieldType.BOOLEAN,
    "double": FieldType.FLOAT,
}


class InvalidValue(Exception):
    """Raised by a checker; the format turns it into a FieldError with the field's path."""


def parse_datetime(value: object) -> datetime:
    """A timezone-aware UTC datetime from a datetime or an ISO-8601 string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidValue(f"{value!r} is not an ISO-8601 date and time") from None
    if not isinstance(value, datetime):
        raise InvalidValue(f"expected a datetime, got {type_name(value)}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidValue(f"{value.isoformat()} has no timezone; add one, e.g. 'Z' or '+00:00'")
    return value.astimezone(UTC)


def finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def type_name(value: object) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a float",
        bool: "a boolean",
        type(None): "null",
        list: "a list",
        dict: "a mapping",
    }
    return names.get(type(value), type(value).__name__)


def make_checker(
    kind: FieldType,
    minimum: float | None,
    maximum: float | None,
    allowed: tuple[Any, ...] | None,
    pattern: str | None,
    nested: Callable[[Any], Any] | None,
) -> Callable[[Any], Any]:
    """A checker for one field: returns the value (coerced where safe) or raises InvalidValue."""
    """A function that returns the (coerced) value or raises InvalidValue. Never sees None."""
    lo, hi = minimum, maximum
    allowed_set = frozenset(allowed) if allowed is not None else None
    allowed_text = ", ".join(repr(v) for v in allowed) if allowed else ""

    def bounds(value: Any, measure: Any, unit: str) -> None:
        if lo is not None and measure < lo:
            raise InvalidValue(f"{value!r} is below the minimum{unit} {lo}")
        if hi is not None and measure > hi:
            raise InvalidValue(f"{value!r} is above the maximum{unit} {hi}")

    def membership(value: Any) -> None:
        if allowed_set is not None and value not in allowed_set:
            raise InvalidValue(f"{value!r} is not one of the allowed values: {allowed_text}")

    if kind is FieldType.STRING:
        regex = re.compile(pattern) if pattern is not None else None
        plain = lo is None and hi is None and regex is None and allowed_set is None

        def check_string(value: Any) -> Any:
            if type(value) is not str:
                if not isinstance(value, str):
                    raise InvalidValue(f"expected a string, got {type_name(value)}")
                value = str(value)
            if plain:
                return value
            bounds(value, len(value), " length")
            if regex is not None and regex.fullmatch(value) is None:
                raise InvalidValue(f"{value!r} does not match the pattern {regex.pattern!r}")
            membership(value)
            return value

        return check_string
    if kind is FieldType.INTEGER:
        plain = lo is None and hi is None and allowed_set is None

        def check_integer(value: Any) -> Any:
            if type(value) is not int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidValue(f"expected an integer, got {type_name(value)} {value!r}")
                value = int(value)
            if plain:
                return value
            bounds(value, value, "")
            membership(value)
            return value

        return check_integer
    if kind is FieldType.FLOAT:
        plain = lo is None and hi is None and allowed_set is None

        def check_float(value: Any) -> Any:
            if type(value) is not float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InvalidValue(f"expected a number, got {type_name(value)} {value!r}")
                value = float(value)
            if value - value != 0.0:  # NaN or an infinity: no JSON, no history, no comparisons
                raise InvalidValue(f"{value!r} is not a valid value (a finite number is needed)")
            if plain:
                return value
            bounds(value, value, "")
            membership(value)
            return value

        return check_float
    if kind is FieldType.BOOLEAN:

        def check_boolean(value: Any) -> Any:
            if type(value) is not bool:
                raise InvalidValue(f"expected true or false, got {type_name(value)} {value!r}")
            return value

        return check_boolean
    if kind is FieldType.DATETIME:

        def check_datetime(value: Any) -> Any:
            value = parse_datetime(value)
            membership(value)
            return value

        return check_datetime
    assert nested is not None

    def check_table(value: Any) -> Any:
        return nested(value)

    return check_table
