"""How events fold into alarms: reduction keys, clears and the level policy (docs/alarms.md).

A definition with a ``reduction_key`` raises alarms: every event of it renders the
key template, and events with the same key are one alarm (one row of the alarm
list: count, first and last occurrence, level, state). A definition with
``clears`` resolves them: its event renders the key template of each event it
names (with ``{name}`` the cleared event's name) and clears the alarm with that
key. ``auto_clear`` clears an alarm that saw no event for that long.

Key templates name parts of the event in braces: ``{context}`` (the path,
``root`` for the root), ``{name}``, ``{level}`` and ``{data.FIELD}`` (the first
record's field). A value that is missing at run time renders as a visible
placeholder (``<no data.FIELD>``), never an exception in the firer.

:func:`parse_key` is the one place a key template is parsed, so the message
templates' engine can take over without touching the callers.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import attrs

from linkserver.core.checks import FieldType
from linkserver.core.errors import LinkServerError
from linkserver.core.formats import TableFormat
from linkserver.core.paths import display, is_valid_name

EVENT_PARTS = ("context", "name", "level")
ALARM_CHANGED = "alarmChanged"
"""The standard event fired in an alarm's context whenever its alarm changes."""


class KeyTemplateError(LinkServerError, ValueError):
    """A reduction key template that cannot be parsed or names something unknown."""


class AlarmLevel(enum.StrEnum):
    """Which level an alarm shows: the highest of its events (default) or the last one's."""

    HIGHEST = "highest"
    LAST = "last"

    @classmethod
    def parse(cls, value: object) -> AlarmLevel:
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(f"alarm_level must be highest or last, got {value!r}") from None


class AlarmState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


def _placeholder(part: str) -> str:
    return f"<no {part}>"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[no-any-return]
    return str(value)


@attrs.frozen(eq=False)
class KeyTemplate:
    """A parsed reduction key template; equal when their texts are."""

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, part or None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyTemplate) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def data_fields(self) -> tuple[str, ...]:
        return tuple(part[5:] for _, part in self.parts if part is not None and part.startswith("data."))

    @property
    def literal(self) -> str:
        return "".join(literal for literal, _ in self.parts)

    def render(self, event: Any, name: str | None = None) -> str:
        """The key of ``event`` (``name`` replaces the event's name: a clear renders the key of
        the event it clears). Never raises on well-formed events."""
        out: list[str] = []
        for literal, part in self.parts:
            out.append(literal)
            if part is None:
                continue
            if part == "context":
                out.append(display(event.context))
            elif part == "name":
                out.append(name if name is not None else event.name)
            elif part == "level":
                out.append(event.level.name)
            else:
                field = part[5:]
                data = event.data
                value = data[0].get(field) if data and isinstance(data[0], dict) else None
                text = _text(value)
                out.append(_placeholder(part) if text is None or text == "" else text)
        return "".join(out)

    def problems(self, format: TableFormat, where: str) -> list[str]:  # noqa: A002 - the attribute's name
        """What is wrong with this template for events of ``format``: unknown fields, and a key
        that may render empty (no literal text, no context or name, only fields that may be
        empty or null)."""
        found = []
        for field in self.data_fields:
            if format.field(field) is None:
                known = ", ".join(format.field_names) or "none"
                found.append(
                    f"{where}: the reduction key names data.{field}, which the format does not have "
                    f"(fields: {known})"
                )
        if found:
            return found
        if self.literal.strip():
            return []
        if any(part in ("context", "name", "level") for _, part in self.parts):
            return []
        if all(_may_be_empty(format, field) for field in self.data_fields):
            found.append(
                f"{where}: the reduction key {self.text!r} may render empty (every field it names may "
                "be null or empty); add {context}, {name} or some text, e.g. '{context}:{name}:"
                + "".join("{data." + f + "}" for f in self.data_fields)
                + "'"
            )
        return found


def _may_be_empty(format: TableFormat, name: str) -> bool:  # noqa: A002
    field = format.field(name)
    if field is None:
        return True
    if field.nullable or field.type is FieldType.TABLE:
        return True
    if field.type is FieldType.STRING:
        if field.allowed is not None:
            return "" in field.allowed
        return not (field.min is not None and field.min >= 1) and not field.pattern
    return False


def parse_key(text: str) -> KeyTemplate:
    """Parse a reduction key template; KeyTemplateError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise KeyTemplateError(
            "a reduction key must not be empty; name what identifies the problem, e.g. '{context}:{name}'"
        )
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise KeyTemplateError(
            f"reduction key {text!r} is malformed: {exc}; write '{{{{' for a literal brace"
        ) from None
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is None:
            parts.append((literal, None))
            continue
        if spec or conversion:
            raise KeyTemplateError(f"reduction key {text!r}: {{{field}}} takes no format spec or conversion")
        if field not in EVENT_PARTS:
            head, _, rest = field.partition(".")
            if head != "data" or not is_valid_name(rest):
                raise KeyTemplateError(
                    f"reduction key {text!r} names {{{field}}}; use {{context}}, {{name}}, {{level}} "
                    "or {data.FIELD}"
                )
        parts.append((literal, field))
    return KeyTemplate(text, tuple(parts))


def _alarm_level(value: object) -> AlarmLevel:
    return AlarmLevel.parse(value)


@attrs.frozen(kw_only=True)
class AlarmSpec:
    """A definition's part in the alarm list: it raises alarms (``reduction_key``) or clears
    them (``clears``, names of events of the same context).

    ``auto_clear``: an alarm with no new event for that long is cleared. ``level``: which
    level the alarm shows (:class:`AlarmLevel`; the highest by default).
    """

    reduction_key: KeyTemplate | None = None
    clears: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    auto_clear: timedelta | None = None
    level: AlarmLevel = attrs.field(default=AlarmLevel.HIGHEST, converter=_alarm_level)

    @property
    def raises(self) -> bool:
        return self.reduction_key is not None


def alarm_problems(
    spec: AlarmSpec | None,
    *,
    persistent: Any,
    format: Any,  # noqa: A002 - the attribute's name
    where: str,
    unknown: Collection[str] = (),
) -> list[tuple[str, str]]:
    """Every inconsistency of a definition's alarm part as ``(key, message)``."""
    if spec is None:
        return []
    found: list[tuple[str, str]] = []
    key = "reduction_key" if spec.raises else "clears"
    if spec.raises and spec.clears:
        found.append(
            (
                "clears",
                f"{where}: an event either raises alarms (reduction_key) or clears them (clears), "
                "not both; define a separate event for the resolution",
            )
        )
    if not spec.raises:
        if spec.auto_clear is not None:
            found.append(("auto_clear", f"{where}: auto_clear needs a reduction_key (it clears its alarms)"))
        if spec.level is not AlarmLevel.HIGHEST:
            found.append(("alarm_level", f"{where}: alarm_level needs a reduction_key"))
        if not spec.clears:
            return found
    if "persistent" not in unknown and persistent is not True:
        found.append(
            (
                key,
                f"{where}: alarms are updated in the commit that stores the event, so an event with "
                f"{key} must be persistent; set persistent: true",
            )
        )
    if spec.auto_clear is not None and spec.auto_clear <= timedelta(0):
        found.append(("auto_clear", f"{where}: auto_clear must be a positive duration"))
    for name in spec.clears:
        if not is_valid_name(name):
            found.append(("clears", f"{where}: clears names {name!r}, which is not an event name"))
    if spec.reduction_key is not None and "format" not in unknown and isinstance(format, TableFormat):
        found.extend(("reduction_key", message) for message in spec.reduction_key.problems(format, where))
    return found
