"""Templates: text with placeholders rendered from an event, safely.

    "{data.username} logged in from {data.address}"

A placeholder names a part of the event the way a filter operand does
(docs/filters.md): ``id``, ``context``, ``name``, ``level``, ``group``,
``author``, ``category``, ``created`` or ``data.FIELD`` (``data.T.SUB`` for a
field of a nested table). ``data.FIELD`` reads the first record, like filters.
``{{`` and ``}}`` are literal braces. ``:SPEC`` after the name is a format
spec applied to the value alone (``{data.value:.1f}``, ``{created:%H:%M}``):
there is no attribute or index access into objects, unlike ``str.format``.
``|TEXT`` at the end is shown when the value cannot be (``{data.address|local}``).
A field with value labels renders its label.

:func:`compile_template` parses once and, given the event's format, checks
every data placeholder against it (an unknown field is an
:class:`~linkserver.core.errors.InvalidTemplate` suggesting the closest name).
:meth:`Template.render` never raises: a value that is missing, null or does
not fit its spec renders as the visible placeholder ``<data.address?>``.
Message templates (event definitions) and reduction keys (alarms) both use it.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import attrs

from linkserver.core.checks import FieldType
from linkserver.core.errors import InvalidTemplate
from linkserver.core.filters.ast import Operand
from linkserver.core.filters.evaluate import getter
from linkserver.core.formats import Field, TableFormat
from linkserver.core.paths import is_valid_name

__all__ = ["OPERANDS", "Placeholder", "Template", "compile_template", "parse_template", "text_of"]

OPERANDS = ("id", "context", "name", "level", "group", "author", "category", "created", "data")
"""What a placeholder may name (``data`` with a field path)."""

_NOT_TEXT = (list, tuple, dict)
_SAMPLES: dict[FieldType, Any] = {
    FieldType.STRING: "",
    FieldType.INTEGER: 0,
    FieldType.FLOAT: 0.0,
    FieldType.BOOLEAN: "true",  # booleans render as text
    FieldType.DATETIME: datetime(2026, 1, 1, tzinfo=UTC),
}
_OPERAND_SAMPLES: dict[str, Any] = {"id": 0, "created": _SAMPLES[FieldType.DATETIME]}


class Unrenderable(Exception):
    """A placeholder has no value that can be shown (missing, null, a table, a bad spec)."""


@attrs.frozen
class Placeholder:
    """``{operand.path:spec}``; ``column`` is where its name starts in the template (from 1)."""

    operand: str
    path: tuple[str, ...] = ()
    spec: str = ""
    column: int = attrs.field(default=0, eq=False, repr=False)
    default: str | None = None

    def __str__(self) -> str:
        return ".".join((self.operand, *self.path))

    @property
    def missing(self) -> str:
        """What is shown where the value cannot be: the default (``{data.address|local}``),
        else ``<data.address?>``."""
        return self.default if self.default is not None else f"<{self}?>"


Part = str | Placeholder


def text_of(value: Any, spec: str = "") -> str:
    """``value`` as a template shows it; Unrenderable for null, tables and specs that do not fit.

    Text as is, booleans ``true``/``false``, levels by name, datetimes ISO-8601
    (or ``format(value, spec)``, i.e. strftime, with a spec), numbers by ``str``
    or the spec. Only ``format(value, spec)`` on a plain value is ever called.
    """
    if type(value) is str and not spec:
        return value  # the common case first: keys and messages are mostly text
    if value is None or isinstance(value, _NOT_TEXT):
        raise Unrenderable
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, Enum):  # a Level
        value = value.name
    elif isinstance(value, datetime) and not spec:
        return value.isoformat()
    elif not isinstance(value, (str, int, float, datetime)):
        raise Unrenderable
    if not spec:
        return value if type(value) is str else str(value)
    try:
        return format(value, spec)
    except (ValueError, TypeError, OverflowError):
        raise Unrenderable from None


def parse_template(text: str) -> tuple[Part, ...]:
    """The literal text and placeholders of ``text``, in order; InvalidTemplate with the column."""
    if not isinstance(text, str):
        raise InvalidTemplate(f"a template must be a string, not {type(text).__name__}")
    parts: list[Part] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            if end < 0:
                raise InvalidTemplate("'{' is never closed; write '{{' for a literal brace", text, i + 1)
            inner = text[i + 1 : end]
            if "{" in inner:
                raise InvalidTemplate("'{' inside a placeholder; close the first one with '}'", text, i + 1)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(inner, text, i + 2))
            i = end + 1
        elif char == "}":
            if not text.startswith("}}", i):
                raise InvalidTemplate("'}' without '{'; write '}}' for a literal brace", text, i + 1)
            literal.append("}")
            i += 2
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _placeholder(inner: str, text: str, column: int) -> Placeholder:
    inner, bar, default = inner.partition("|")
    name, colon, spec = inner.partition(":")
    lead = len(name) - len(name.lstrip())
    name = name.strip()
    column += lead
    if not name:
        raise InvalidTemplate(
            "empty placeholder; name what to show, e.g. {name} or {data.FIELD}", text, column - 1
        )
    head, *path = name.split(".")
    if head not in OPERANDS:
        close = difflib.get_close_matches(head, OPERANDS, n=1)
        hint = f"; did you mean {{{close[0]}}}?" if close else ""
        raise InvalidTemplate(
            f"unknown placeholder {{{name}}}{hint} (a template can show: "
            f"{', '.join(o for o in OPERANDS if o != 'data')} or data.FIELD)",
            text,
            column,
        )
    if head == "data":
        if not path:
            raise InvalidTemplate(
                "{data} is the whole data table; name one field, e.g. {data.FIELD}", text, column
            )
        offset = column + len("data.")
        for part in path:
            if not is_valid_name(part):
                raise InvalidTemplate(
                    f"invalid field name {part!r} in {{{name}}}: use letters, digits and '_'", text, offset
                )
            offset += len(part) + 1
    elif path:
        raise InvalidTemplate(f"{{{name}}}: {head} has no parts; write {{{head}}}", text, column)
    placeholder = Placeholder(head, tuple(path), spec if colon else "", column, default if bar else None)
    if head in _OPERAND_SAMPLES or (head != "data" and placeholder.spec):
        _check_spec(placeholder, (_OPERAND_SAMPLES.get(head, ""),), text, "")
    return placeholder


def _check_spec(placeholder: Placeholder, samples: Sequence[Any], text: str, where: str) -> None:
    """InvalidTemplate unless the spec formats each sample (the kinds of value it will see)."""
    if not placeholder.spec:
        return
    for sample in samples:
        try:
            text_of(sample, placeholder.spec)
        except Unrenderable:
            kind = "text" if isinstance(sample, str) else type(sample).__name__
            raise InvalidTemplate(
                f"{_prefix(where)}format spec {placeholder.spec!r} of {{{placeholder}}} does not apply "
                f"to {kind} values",
                text,
                placeholder.column,
            ) from None


def resolve_field(placeholder: Placeholder, fmt: TableFormat, text: str = "", where: str = "") -> Field:
    """The field ``data.PATH`` names in ``fmt``; InvalidTemplate (suggesting a close name) if none."""
    current = fmt
    field: Field | None = None
    column = placeholder.column + len("data.")
    for index, name in enumerate(placeholder.path):
        field = current.field(name)
        shown = "data." + ".".join(placeholder.path[: index + 1])
        if field is None:
            known = current.field_names
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{shown[: -len(name)]}{close[0]}'?" if close else ""
            listing = f" (its fields: {', '.join(known)})" if known else " (it has no fields)"
            raise InvalidTemplate(
                f"{_prefix(where)}{shown} is not a field of the event format{hint}{listing}", text, column
            )
        if index < len(placeholder.path) - 1:
            if field.type is not FieldType.TABLE or field.format is None:
                raise InvalidTemplate(
                    f"{_prefix(where)}{shown} is a {field.type} field; it has no sub-fields", text, column
                )
            current = field.format
        column += len(name) + 1
    assert field is not None
    if field.type is FieldType.TABLE:
        first = field.format.field_names[0] if field.format and field.format.field_names else "FIELD"
        raise InvalidTemplate(
            f"{_prefix(where)}{placeholder} is a table; show one of its fields, e.g. {placeholder}.{first}",
            text,
            placeholder.column,
        )
    return field


PartRenderer = Callable[[Any], str]
"""``event -> text`` of one placeholder; raises Unrenderable."""


def _renderer(placeholder: Placeholder, field: Field | None) -> PartRenderer:
    spec = placeholder.spec
    if placeholder.operand == "data":
        read = getter(Operand("data", placeholder.path))
        labels = dict(field.labels) if field is not None and field.labels else None
        if labels:

            def labelled(event: Any) -> str:
                value = read(event)
                label = labels.get(value) if type(value) in (int, str) else None
                return text_of(value if label is None else label, spec)

            return labelled
        if not spec:

            def plain(event: Any) -> str:
                value = read(event)
                return value if type(value) is str else text_of(value)  # text as is: the common case

            return plain
        return lambda event: text_of(read(event), spec)
    if placeholder.operand == "context":
        if not spec:
            return lambda event: event.context or "root"  # a path: always text
        return lambda event: text_of(event.context or "root", spec)
    if placeholder.operand == "name" and not spec:
        return operator.attrgetter("name")  # a name: always text
    read = operator.attrgetter(placeholder.operand)
    return lambda event: text_of(read(event), spec)


def _joined(pieces: Sequence[str | PartRenderer]) -> Callable[[Any], str]:
    """``event -> text`` of every piece at once (one ``str.format`` of the placeholders' texts):
    what :meth:`Template.render` tries first; it raises where a placeholder cannot render."""
    readers: tuple[PartRenderer, ...] = tuple(piece for piece in pieces if not isinstance(piece, str))
    layout = "".join(
        piece.replace("{", "{{").replace("}", "}}") if isinstance(piece, str) else "{}" for piece in pieces
    ).format
    if len(readers) == 1:
        (only,) = readers
        return lambda event: layout(only(event))
    return lambda event: layout(*[read(event) for read in readers])


@attrs.frozen(eq=False, repr=False)
class Template:
    """A parsed, checked template; equal (and hashed) by its text. :meth:`render` never raises."""

    text: str
    parts: tuple[Part, ...]
    _pieces: tuple[str | PartRenderer, ...] = attrs.field(alias="pieces")
    _missing: tuple[str, ...] = attrs.field(alias="missing")  # per piece: the placeholder shown instead
    _all: Callable[[Any], str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_all", _joined(self._pieces))

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(part for part in self.parts if isinstance(part, Placeholder))

    def render(self, event: Any) -> str:
        """The text for ``event``; a value that cannot be shown is its placeholder (``<data.x?>``)."""
        try:
            return self._all(event)  # every placeholder renders: one format call (keys on the writer's path)
        except Exception:
            pass
        out: list[str] = []
        for piece, missing in zip(self._pieces, self._missing, strict=True):
            if type(piece) is str:
                out.append(piece)
                continue
            try:
                out.append(piece(event))  # type: ignore[operator]
            except Exception:  # Unrenderable, or an event not shaped as its format says
                out.append(missing)
        return "".join(out)

    def render_strict(self, event: Any) -> str | None:
        """The text for ``event``, or None if a placeholder without a ``|default`` cannot be
        shown (for keys, where a placeholder text would fold unrelated events)."""
        out: list[str] = []
        for piece, placeholder in zip(self._pieces, self._placeholder_of, strict=True):
            if type(piece) is str:
                out.append(piece)
                continue
            try:
                out.append(piece(event))  # type: ignore[operator]
            except Exception:
                if placeholder is None or placeholder.default is None:
                    return None
                out.append(placeholder.default)
        return "".join(out)

    @property
    def _placeholder_of(self) -> tuple[Placeholder | None, ...]:
        return tuple(part if isinstance(part, Placeholder) else None for part in self.parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("Template", self.text))

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def __str__(self) -> str:
        return self.text


def compile_template(text: str, fmt: TableFormat | None = None, *, where: str = "") -> Template:
    """Parse ``text`` and, with ``fmt``, check its data placeholders against the format.

    Raises InvalidTemplate saying what is wrong and at which column; ``where``
    (``message of event 'login'``) starts the message of format problems.
    Without ``fmt`` data placeholders are not checked, and labels are not known.
    """
    parts = parse_template(text)
    pieces: list[str | PartRenderer] = []
    missing: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
            missing.append("")
            continue
        field = None
        if part.operand == "data" and fmt is not None:
            field = resolve_field(part, fmt, text, where)
            samples = [_SAMPLES[field.type]]
            if field.labels:
                samples.append("")
            _check_spec(part, samples, text, where)
        pieces.append(_renderer(part, field))
        missing.append(part.missing)
    return Template(text, parts, pieces=tuple(pieces), missing=tuple(missing))


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""
