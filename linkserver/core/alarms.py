"""How events fold into alarms: reduction keys, clears and the level policy (docs/alarms.md).

A definition with a ``reduction_key`` raises alarms: every event of it renders the
key template, and events with the same key are one alarm (one row of the alarm
list: count, first and last occurrence, level, state). A definition with
``clears`` resolves them: its event renders the key template of each event it
names (with ``{name}`` the cleared event's name) and clears the alarm with that
key. ``auto_clear`` clears an alarm that saw no event for that long.

Key templates are the message templates of :mod:`linkserver.core.templates`:
``{context}`` (the path, ``root`` for the root), ``{name}``, ``{level}``,
``{data.FIELD}`` (the first record's field) and the other event parts. A value
that is missing at run time renders as a visible placeholder (``<data.FIELD?>``),
never an exception in the firer. :func:`parse_key` is where a key is parsed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

import attrs

from linkserver.core.checks import FieldType
from linkserver.core.errors import InvalidTemplate, LinkServerError
from linkserver.core.formats import TableFormat
from linkserver.core.paths import is_valid_name
from linkserver.core.templates import Template, compile_template, text_of

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


class _Renamed:
    """``event`` as a clear renders the key of the event it clears: with that event's name."""

    __slots__ = ("_event", "name")

    def __init__(self, event: Any, name: str) -> None:
        self._event = event
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._event, attribute)


@attrs.frozen(eq=False)
class KeyTemplate:
    """A parsed reduction key template (the message templates' engine, core/templates.py);
    equal when their texts are."""

    text: str
    template: Template
    _fast: Callable[[Any], str] | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_fast", _fast_key(self.template))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyTemplate) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @property
    def data_fields(self) -> tuple[str, ...]:
        return tuple(".".join(p.path) for p in self.template.placeholders if p.operand == "data")

    @property
    def literal(self) -> str:
        return "".join(part for part in self.template.parts if isinstance(part, str))

    def render(self, event: Any, name: str | None = None) -> str:
        """The key of ``event`` (``name`` replaces the event's name: a clear renders the key of
        the event it clears). Never raises: what cannot be shown renders as ``<data.x?>``."""
        if name is None:
            fast = self._fast
            if fast is not None:
                try:
                    return fast(event)
                except Exception:  # a value it cannot show: the template says what is shown
                    pass
            return self.template.render(event)
        return self.template.render(_Renamed(event, name))

    def problems(self, format: TableFormat, where: str) -> list[str]:  # noqa: A002 - the attribute's name
        """What is wrong with this template for events of ``format``: unknown fields (or specs that
        do not fit them), and a key that may render empty (no literal text, no event part, only
        fields that may be empty or null)."""
        try:
            compile_template(self.text, format, where=f"{where}: the reduction key")
        except InvalidTemplate as exc:
            return [exc.message]
        if self.literal.strip():
            return []
        if any(p.operand != "data" for p in self.template.placeholders):
            return []
        if all(_may_be_empty(format, field) for field in self.data_fields):
            return [
                f"{where}: the reduction key {self.text!r} may render empty (every field it names may "
                "be null or empty); add {context}, {name} or some text, e.g. '{context}:{name}:"
                + "".join("{data." + f + "}" for f in self.data_fields)
                + "'"
            ]
        return []


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


_CONTEXT, _NAME, _FIELD = 0, 1, 2


def _fast_key(template: Template) -> Callable[[Any], str] | None:
    """``event -> key`` in one call for a key of ``{context}``, ``{name}`` and ``{data.FIELD}``
    only (no specs, defaults or nested fields; what most keys are): what the history writer
    renders for every event of a raising definition in each batch. It raises where the
    template would show a placeholder (a missing field): :meth:`KeyTemplate.render` then asks
    the template. None for any other key."""
    plan: list[tuple[int, str]] = []
    layout: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            layout.append(part.replace("{", "{{").replace("}", "}}"))
            continue
        if part.spec or part.default is not None:
            return None
        if part.operand == "context" and not part.path:
            plan.append((_CONTEXT, ""))
        elif part.operand == "name" and not part.path:
            plan.append((_NAME, ""))
        elif part.operand == "data" and len(part.path) == 1:
            plan.append((_FIELD, part.path[0]))
        else:
            return None
        layout.append("{}")
    steps = tuple(plan)
    form = "".join(layout).format

    def render(event: Any) -> str:
        data = event.data
        record = data[0] if data else None
        values = []
        for kind, field in steps:
            if kind == _FIELD:
                value = record.get(field)  # type: ignore[union-attr]  # no record: the template's turn
                values.append(value if type(value) is str else text_of(value))
            elif kind == _CONTEXT:
                values.append(event.context or "root")
            else:
                values.append(event.name)
        return form(*values)

    return render


def parse_key(text: str) -> KeyTemplate:
    """Parse a reduction key template; KeyTemplateError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise KeyTemplateError(
            "a reduction key must not be empty; name what identifies the problem, e.g. '{context}:{name}'"
        )
    try:
        return KeyTemplate(text, compile_template(text))
    except InvalidTemplate as exc:
        raise KeyTemplateError(f"reduction key {text!r}: {exc.message}") from None


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
