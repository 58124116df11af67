"""Table formats and data-table validation.

A :class:`TableFormat` is a list of :class:`Field` plus record-count limits.
Building a data table merges the fields' defaults with the posted values
(posted values win), coerces only the safe cases (int to float, ISO-8601
string to datetime) and validates everything; every bad field is reported in
one :class:`DataTableError`. Validation is compiled once per format into a
list of small checker closures, because it runs on every fire.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from typing import Any

import attrs

from linkserver.core.checks import FieldType, InvalidValue, finite, make_checker, type_name
from linkserver.core.errors import DataTableError, FieldError, InvalidDefinition
from linkserver.core.paths import is_valid_name
from linkserver.core.records import DataTable, Record, to_jsonable

__all__ = ["DataTable", "Record", "to_jsonable"]  # re-exported: their home is core.records

UTC = UTC


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> _NoDefault:
        return self

    def __deepcopy__(self, memo: object) -> _NoDefault:
        return self


NO_DEFAULT: Any = _NoDefault()


@attrs.frozen(kw_only=True)
class Field:
    """One column of a table format; checked for consistency at construction."""

    name: str
    type: FieldType = attrs.field(converter=lambda value: FieldType.parse(value))
    description: str = ""
    nullable: bool = False
    default: Any = NO_DEFAULT
    allowed: tuple[Any, ...] | None = attrs.field(
        default=None, converter=lambda v: None if v is None else tuple(v)
    )
    min: float | None = None
    max: float | None = None
    pattern: str | None = None
    format: TableFormat | None = None

    def __attrs_post_init__(self) -> None:
        where = f"field {self.name!r}"
        if not is_valid_name(self.name):
            raise InvalidDefinition(f"invalid field name {self.name!r}: use letters, digits and '_'")
        numeric_or_string = self.type in (FieldType.INTEGER, FieldType.FLOAT, FieldType.STRING)
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is None:
                continue
            if not numeric_or_string:
                raise InvalidDefinition(f"{where}: {bound} applies to numbers and strings, not {self.type}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not finite(value):
                raise InvalidDefinition(f"{where}: {bound} must be a finite number, got {value!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InvalidDefinition(f"{where}: min {self.min} is greater than max {self.max}")
        if self.pattern is not None:
            if self.type is not FieldType.STRING:
                raise InvalidDefinition(f"{where}: pattern applies to strings only, not {self.type}")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise InvalidDefinition(
                    f"{where}: pattern {self.pattern!r} is not a valid regex: {exc}"
                ) from None
        if self.type is FieldType.TABLE:
            if not isinstance(self.format, TableFormat):
                raise InvalidDefinition(f"{where}: a table field needs a nested format")
        elif self.format is not None:
            raise InvalidDefinition(f"{where}: only table fields have a nested format")
        if self.allowed is not None:
            if self.type in (FieldType.TABLE, FieldType.BOOLEAN):
                raise InvalidDefinition(f"{where}: allowed values do not apply to {self.type} fields")
            if not self.allowed:
                raise InvalidDefinition(f"{where}: the list of allowed values is empty")
            for value in self.allowed:
                try:
                    hash(value)
                except TypeError:
                    raise InvalidDefinition(
                        f"{where}: allowed value {value!r} must be a plain value"
                    ) from None
        # Every allowed value and the default must pass the field's own checks.
        check = self.checker()
        for value in self.allowed or ():
            try:
                check(value)
            except InvalidValue as exc:
                raise InvalidDefinition(f"{where}: allowed value {value!r} is invalid: {exc}") from None
        if self.default is not NO_DEFAULT:
            if self.default is None:
                if not self.nullable:
                    raise InvalidDefinition(f"{where}: default is null but the field is not nullable")
            else:
                try:
                    check(self.default)
                except InvalidValue as exc:
                    raise InvalidDefinition(f"{where}: default {self.default!r} is invalid: {exc}") from None
                except DataTableError as exc:
                    raise InvalidDefinition(f"{where}: default is invalid: {exc}") from None

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def checker(self) -> Callable[[Any], Any]:
        """A function that returns the (coerced) value or raises InvalidValue. Never sees None."""
        nested = self.format.build if self.format is not None else None
        return make_checker(self.type, self.min, self.max, self.allowed, self.pattern, nested)


@attrs.frozen(kw_only=True)
class TableFormat:
    """Fields plus record-count limits. ``max_records=None`` means unlimited."""

    fields: tuple[Field, ...] = attrs.field(default=(), converter=tuple)
    min_records: int = 1
    max_records: int | None = 1
    _plan: Any = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        names = [f.name for f in self.fields]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InvalidDefinition(f"field {name!r} is defined twice in one format")
            seen.add(name)
        if (
            isinstance(self.min_records, bool)
            or not isinstance(self.min_records, int)
            or self.min_records < 0
        ):
            raise InvalidDefinition(f"min_records must be a non-negative integer, got {self.min_records!r}")
        if self.max_records is not None:
            if (
                isinstance(self.max_records, bool)
                or not isinstance(self.max_records, int)
                or self.max_records < 1
            ):
                raise InvalidDefinition(f"max_records must be a positive integer, got {self.max_records!r}")
            if self.max_records < self.min_records:
                raise InvalidDefinition(
                    f"max_records {self.max_records} is less than min_records {self.min_records}"
                )
        plan = tuple(
            (f.name, f.default, f.has_default, f.nullable, f.checker(), isinstance(f.default, (dict, list)))
            for f in self.fields
        )
        object.__setattr__(self, "_plan", plan)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def build(self, data: object = None, *, where: str = "") -> DataTable:
        """Merge defaults with ``data`` and validate; return the records.

        ``data`` is None, one mapping (single-record formats only) or a
        sequence of mappings. Raises DataTableError naming every bad field.
        """
        problems: list[FieldError] = []
        # The common case first: one dict for a single-record format.
        if type(data) is dict and self.max_records == 1:
            record = self._build_record(data, "", problems)
            if problems:
                raise DataTableError(problems, where)
            return (record,)
        is_mapping = isinstance(data, Mapping)
        if data is None:
            # Nothing posted: one record of defaults where exactly one is expected.
            raw: Sequence[Any] = ({},) if self.min_records == 1 and self.max_records == 1 else ()
        elif is_mapping:
            if self.max_records != 1:
                raise DataTableError(
                    [FieldError("data", "this format holds several records; post a list of mappings")],
                    where,
                )
            raw = (data,)  # type: ignore[assignment]
        elif isinstance(data, (list, tuple)):
            raw = data
        else:
            raise DataTableError(
                [FieldError("data", f"expected a mapping or a list of mappings, got {type_name(data)}")],
                where,
            )
        count = len(raw)
        if count < self.min_records:
            problems.append(FieldError("data", f"{count} records, at least {self.min_records} required"))
        if self.max_records is not None and count > self.max_records:
            problems.append(FieldError("data", f"{count} records, at most {self.max_records} allowed"))
        if problems:
            raise DataTableError(problems, where)
        single = data is None or is_mapping
        records = []
        for index, record in enumerate(raw):
            if not isinstance(record, Mapping):
                problems.append(FieldError(f"[{index}]", f"expected a mapping, got {type_name(record)}"))
                continue
            records.append(self._build_record(record, "" if single else f"[{index}].", problems))
        if problems:
            raise DataTableError(problems, where)
        return tuple(records)

    def _build_record(self, record: Mapping[str, Any], prefix: str, problems: list[FieldError]) -> Record:
        """One record with defaults merged and values checked; problems are appended."""
        out: Record = {}
        used = 0
        for name, default, has_default, nullable, check, mutable_default in self._plan:
            if name in record:
                value = record[name]
                used += 1
            elif has_default:
                value = copy.deepcopy(default) if mutable_default else default
            elif nullable:
                out[name] = None
                continue
            else:
                problems.append(FieldError(prefix + name, "is required and has no default"))
                continue
            if value is None:
                if not nullable:
                    problems.append(FieldError(prefix + name, "may not be null"))
                    continue
                out[name] = None
                continue
            try:
                out[name] = check(value)
            except InvalidValue as exc:
                problems.append(FieldError(prefix + name, str(exc)))
            except DataTableError as exc:
                for inner in exc.problems:
                    problems.append(FieldError(f"{prefix}{name}{_nested(inner.field)}", inner.message))
        if used != len(record):
            known = ", ".join(self.field_names) or "none"
            for key in record:
                if self.field(key) is None:
                    problems.append(FieldError(prefix + str(key), f"unknown field (known fields: {known})"))
        return out


def _nested(inner: str) -> str:
    if inner == "data":
        return ""
    return inner if inner.startswith("[") else "." + inner


EMPTY_FORMAT = TableFormat(fields=(), min_records=0, max_records=1)
