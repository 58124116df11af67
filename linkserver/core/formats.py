"""Table formats and data-table validation.

A :class:`TableFormat` is a list of :class:`Field` plus record-count limits.
Building a data table merges the fields' defaults with the posted values
(posted values win), coerces only the safe cases (int to float, ISO-8601
string to datetime) and validates everything; every bad field is reported in
one :class:`DataTableError`. Validation is compiled per format, on its first
use, into a list of small checker closures, because it runs on every fire;
fields of the same type and limits share one checker.

Consistency checks collect every problem (:func:`field_problems`,
:func:`format_problems`) instead of stopping at the first, so a reader of
YAML can report all of them at once, each at its own key.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
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


def field_problems(
    *,
    name: Any,
    type: Any = FieldType.STRING,  # noqa: A002 - the attribute's name
    nullable: Any = False,
    default: Any = NO_DEFAULT,
    allowed: Any = None,
    min: Any = None,  # noqa: A002
    max: Any = None,  # noqa: A002
    pattern: Any = None,
    format: Any = None,  # noqa: A002
    labels: Any = None,
    unknown: Collection[str] = (),
    where: str | None = None,
) -> list[tuple[str, str]]:
    """Every inconsistency of a field's attributes as ``(key, message)``; empty when it is valid.

    ``unknown`` names attributes whose value could not be read: checks that
    depend on one of them are left out rather than guessed, so a caller
    that already reported a bad value gets no follow-up problems from it.
    ``where`` names the field in messages (default ``field 'NAME'``).
    """
    found: list[tuple[str, str]] = []
    where = where or f"field {name!r}"
    if "name" not in unknown and not (isinstance(name, str) and is_valid_name(name)):
        found.append(("name", f"invalid field name {name!r}: use letters, digits and '_'"))
    kind: FieldType | None = None
    if "type" not in unknown:
        try:
            kind = FieldType.parse(type)
        except InvalidDefinition as exc:
            found.append(("type", f"{where}: {exc}"))
    numeric_or_string = kind in (FieldType.INTEGER, FieldType.FLOAT, FieldType.STRING)
    bounds_ok = True
    for key, value in (("min", min), ("max", max)):
        if value is None or key in unknown:
            bounds_ok = bounds_ok and key not in unknown
            continue
        if kind is not None and not numeric_or_string:
            found.append((key, f"{where}: {key} applies to numbers and strings, not {kind}"))
            bounds_ok = False
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not finite(value):
            found.append((key, f"{where}: {key} must be a finite number, got {value!r}"))
            bounds_ok = False
    if bounds_ok and min is not None and max is not None and min > max:
        found.append(("min", f"{where}: min {min} is greater than max {max}"))
    pattern_ok = "pattern" not in unknown
    if pattern is not None and pattern_ok:
        if kind is not None and kind is not FieldType.STRING:
            found.append(("pattern", f"{where}: pattern applies to strings only, not {kind}"))
            pattern_ok = False
        elif not isinstance(pattern, str):
            found.append(("pattern", f"{where}: pattern must be a string, got {pattern!r}"))
            pattern_ok = False
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                found.append(("pattern", f"{where}: pattern {pattern!r} is not a valid regex: {exc}"))
                pattern_ok = False
    format_ok = "format" not in unknown
    if kind is FieldType.TABLE and format_ok and not isinstance(format, TableFormat):
        found.append(("type", f"{where}: a table field needs a nested format"))
        format_ok = False
    elif kind is not None and kind is not FieldType.TABLE and format is not None and format_ok:
        found.append(("format", f"{where}: only table fields have a nested format"))
    allowed_ok = "allowed" not in unknown
    if allowed is not None and allowed_ok:
        if kind in (FieldType.TABLE, FieldType.BOOLEAN):
            found.append(("allowed", f"{where}: allowed values do not apply to {kind} fields"))
            allowed_ok = False
        elif not allowed:
            found.append(("allowed", f"{where}: the list of allowed values is empty"))
            allowed_ok = False
        else:
            for value in allowed:
                try:
                    hash(value)
                except TypeError:
                    found.append(("allowed", f"{where}: allowed value {value!r} must be a plain value"))
                    allowed_ok = False
    labels_ok = "labels" not in unknown
    pairs: list[tuple[Any, Any]] = []
    if labels is not None and labels_ok:
        pairs, problems = _label_pairs(labels, kind, where)
        found.extend(problems)
        labels_ok = not problems
    if kind is None or not (bounds_ok and pattern_ok and format_ok and allowed_ok) or found:
        # The value checks below need a consistent checker; what is wrong is already said.
        if default is None and "default" not in unknown and "nullable" not in unknown and not nullable:
            found.append(("default", f"{where}: default is null but the field is not nullable"))
        return found
    nested = format.build if kind is FieldType.TABLE else None
    allowed = None if allowed is None else tuple(allowed)
    check = shared_checker(kind, min, max, allowed, pattern, nested)
    for value in allowed or ():
        try:
            check(value)
        except InvalidValue as exc:
            found.append(("allowed", f"{where}: allowed value {value!r} is invalid: {exc}"))
    for value, _ in pairs if labels_ok else ():
        try:
            check(value)
        except InvalidValue as exc:
            found.append(("labels", f"{where}: the labelled value {value!r} is not a valid value: {exc}"))
    if default is not NO_DEFAULT and "default" not in unknown:
        if default is None:
            if not nullable and "nullable" not in unknown:
                found.append(("default", f"{where}: default is null but the field is not nullable"))
        else:
            try:
                check(default)
            except InvalidValue as exc:
                found.append(("default", f"{where}: default {default!r} is invalid: {exc}"))
            except DataTableError as exc:
                found.append(("default", f"{where}: default is invalid: {exc}"))
    return found


LABELLED_TYPES = (FieldType.INTEGER, FieldType.STRING)
"""The field types that may have value labels (coded fields)."""


def _label_pairs(labels: Any, kind: FieldType | None, where: str) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """``(value, label)`` pairs of ``labels`` and every problem with them as ``(key, message)``."""
    found: list[tuple[str, str]] = []
    if isinstance(labels, Mapping):
        pairs = list(labels.items())
    elif isinstance(labels, (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 for p in labels):
        pairs = list(labels)
    else:
        return [], [("labels", f"{where}: labels must map values to labels, e.g. {{1: up, 2: down}}")]
    if kind is not None and kind not in LABELLED_TYPES:
        return pairs, [("labels", f"{where}: labels apply to integer and string fields, not {kind} fields")]
    if not pairs:
        return pairs, [("labels", f"{where}: the labels mapping is empty")]
    seen: dict[str, Any] = {}
    values = {value for value, _ in pairs if isinstance(value, str)}
    for value, label in pairs:
        if kind is FieldType.INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
            found.append(
                (
                    "labels",
                    f"{where}: labelled value {value!r} is not an integer; the field is an integer field",
                )
            )
        elif kind is FieldType.STRING and not isinstance(value, str):
            found.append(
                ("labels", f"{where}: labelled value {value!r} is not a string; quote it: '{value}'")
            )
        if not isinstance(label, str) or not label.strip():
            found.append(("labels", f"{where}: the label of {value!r} must be non-empty text, got {label!r}"))
            continue
        if label in seen:
            found.append(
                ("labels", f"{where}: label {label!r} is given to both {seen[label]!r} and {value!r}")
            )
        seen.setdefault(label, value)
        if label in values and label != value:
            found.append(
                (
                    "labels",
                    f"{where}: label {label!r} of {value!r} is also a labelled value; "
                    "a filter could not tell them apart",
                )
            )
    return pairs, found


_CHECKERS: dict[tuple[Any, ...], Callable[[Any], Any]] = {}
_CHECKERS_LIMIT = 10_000


def shared_checker(
    kind: FieldType,
    minimum: Any,
    maximum: Any,
    allowed: tuple[Any, ...] | None,
    pattern: str | None,
    nested: Callable[[Any], Any] | None,
) -> Callable[[Any], Any]:
    """:func:`make_checker`, shared between fields with the same type and limits.

    A large definition set repeats a few field shapes (plain strings above
    all) tens of thousands of times; one closure per shape instead of one
    per field is most of the memory a definition costs. Nested tables are
    not shared (their checker is their format's). The table is bounded.
    """
    if nested is not None:
        return make_checker(kind, minimum, maximum, allowed, pattern, nested)
    # The types are part of the key: 1 == 1.0 == True must not share a checker.
    key = (
        kind,
        type(minimum),
        minimum,
        type(maximum),
        maximum,
        None if allowed is None else tuple((type(v), v) for v in allowed),
        pattern,
    )
    try:
        return _CHECKERS[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable allowed value: reported by field_problems
        return make_checker(kind, minimum, maximum, allowed, pattern, nested)
    check = make_checker(kind, minimum, maximum, allowed, pattern, nested)
    if len(_CHECKERS) < _CHECKERS_LIMIT:
        _CHECKERS[key] = check
    return check


def _labels(value: Any) -> Any:
    """A mapping (or pairs) as a tuple of pairs; anything else is left for field_problems to name."""
    if isinstance(value, Mapping):
        return tuple(value.items())
    if isinstance(value, list):
        return tuple(value)
    return value


@attrs.frozen(kw_only=True)
class Field:
    """One column of a table format; checked for consistency at construction.

    An inconsistent field raises :class:`InvalidDefinition` naming every
    problem (see :func:`field_problems`).
    """

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
    labels: tuple[tuple[Any, str], ...] | None = attrs.field(default=None, converter=_labels)
    """Value labels of a coded field, ``((1, "up"), (2, "down"))``: stored as values, shown as labels."""

    def __attrs_post_init__(self) -> None:
        problems = field_problems(
            name=self.name,
            type=self.type,
            nullable=self.nullable,
            default=self.default,
            allowed=self.allowed,
            min=self.min,
            max=self.max,
            pattern=self.pattern,
            format=self.format,
            labels=self.labels,
        )
        if problems:
            raise InvalidDefinition(problems=problems)

    def label(self, value: Any) -> str | None:
        """The label of ``value``, None when it has none (or the field has no labels)."""
        if self.labels is None or type(value) not in (int, str):
            return None
        for known, label in self.labels:
            if known == value and type(known) is type(value):
                return label
        return None

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def checker(self) -> Callable[[Any], Any]:
        """A function that returns the (coerced) value or raises InvalidValue. Never sees None."""
        nested = self.format.build if self.format is not None else None
        return shared_checker(self.type, self.min, self.max, self.allowed, self.pattern, nested)


def format_problems(min_records: Any = 1, max_records: Any = 1) -> list[tuple[str, str]]:
    """Every inconsistency of a format's record counts as ``(key, message)``."""
    found: list[tuple[str, str]] = []
    min_ok = not isinstance(min_records, bool) and isinstance(min_records, int) and min_records >= 0
    if not min_ok:
        found.append(("min_records", f"min_records must be a non-negative integer, got {min_records!r}"))
    if max_records is not None:
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            found.append(("max_records", f"max_records must be a positive integer, got {max_records!r}"))
        elif min_ok and max_records < min_records:
            found.append(("max_records", f"max_records {max_records} is less than min_records {min_records}"))
    return found


@attrs.frozen(kw_only=True)
class TableFormat:
    """Fields plus record-count limits. ``max_records=None`` means unlimited."""

    fields: tuple[Field, ...] = attrs.field(default=(), converter=tuple)
    min_records: int = 1
    max_records: int | None = 1
    _plan: Any = attrs.field(init=False, repr=False, eq=False, hash=False)

    def __attrs_post_init__(self) -> None:
        problems = format_problems(self.min_records, self.max_records)
        seen: set[str] = set()
        for f in self.fields:
            if f.name in seen:
                problems.append(("fields", f"field {f.name!r} is defined twice in one format"))
            seen.add(f.name)
        if problems:
            raise InvalidDefinition(problems=problems)
        # Compiled on the first build: most definitions of a large set are
        # rarely fired, and the plan is a good part of what a format costs.
        object.__setattr__(self, "_plan", None)

    def _compile(self) -> tuple[tuple[Any, ...], ...]:
        plan = tuple(
            (f.name, f.default, f.has_default, f.nullable, f.checker(), isinstance(f.default, (dict, list)))
            for f in self.fields
        )
        object.__setattr__(self, "_plan", plan)
        return plan

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
        plan = self._plan
        if plan is None:
            plan = self._compile()
        for name, default, has_default, nullable, check, mutable_default in plan:
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
