"""Table formats and event definitions read from YAML nodes.

:class:`DefinitionReader` turns a format mapping (named in ``formats:`` or
written inline) into a :class:`TableFormat` and an event mapping into an
:class:`EventDefinition`. Named formats are global across files, built once
and shared; references to unknown formats and formats that contain
themselves are reported at the reference.
"""

from __future__ import annotations

from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from linkserver.core.alarms import AlarmSpec, alarm_problems
from linkserver.core.categories import Category, InvalidCategory
from linkserver.core.definitions import EventDefinition, definition_problems
from linkserver.core.errors import InvalidDefinition, InvalidName, InvalidTemplate
from linkserver.core.formats import (
    EMPTY_FORMAT,
    NO_DEFAULT,
    Field,
    FieldType,
    TableFormat,
    field_problems,
    format_problems,
)
from linkserver.core.paths import check_name
from linkserver.core.templates import compile_template
from linkserver.loading.alarm_fields import ALARM_KEYS, clears_location, read_alarm
from linkserver.loading.entries import Entries, as_mapping
from linkserver.loading.problems import Location, describe, suggest
from linkserver.loading.yamlnodes import MAP_TAG, MISSING, Document, describe_node, is_null

FORMAT_KEYS = ("description", "min_records", "max_records", "fields")
FIELD_KEYS = (
    "name",
    "type",
    "description",
    "nullable",
    "default",
    "allowed",
    "min",
    "max",
    "pattern",
    "format",
    "labels",
)
EVENT_KEYS = (
    "description",
    "help",
    "level",
    "persistent",
    "expiration",
    "permissions",
    "fire_permissions",
    "group",
    "hidden",
    "requires_acknowledgement",
    "category",
    "format",
    *ALARM_KEYS,
    "message",
    "instructions",
)


class FormatNotYetKnown(Exception):
    """Raised while :attr:`DefinitionReader.deferring`: a format name not registered (yet)."""


class DefinitionReader:
    """Builds formats and event definitions; named formats must be registered first.

    While :attr:`deferring` is set (files are still being read), a reference
    to a format name not registered yet raises :class:`FormatNotYetKnown`
    instead of being reported: the name may be defined in a later file.
    """

    def __init__(self) -> None:
        self._named: dict[str, tuple[Document, Node, Location]] = {}
        self._built: dict[str, TableFormat | None] = {}
        self._building: list[str] = []
        self._inline: dict[int, TableFormat | None] = {}
        self._inline_active: set[int] = set()
        self.deferring = False
        self.strings: dict[str, str] = {}
        """Every name and description read so far: equal strings are kept once."""
        self.clears_at: dict[int, Location] = {}
        """Where each definition with ``clears`` says it (by id), for the checks per context."""

    def register_format(self, doc: Document, key: Node, node: Node) -> None:
        """Record a named format (``formats: {name: ...}``); names are global."""
        name = key.value
        try:
            check_name(name, "format name")
        except InvalidName as exc:
            doc.error(key, str(exc))
            return
        first = self._named.get(name)
        if first is not None:
            doc.error(
                key,
                f"format {name!r} is already defined at {first[2].seen_from(doc.at(key))}; "
                "rename one of them",
            )
            return
        self._named[name] = (doc, node, doc.at(key))

    def forget_nodes(self) -> None:
        """Drop what is cached by node identity: a file's nodes are freed (and ids reused) after it."""
        self._inline.clear()

    def build_named_formats(self) -> None:
        """Build every named format, so that unused ones are checked too."""
        for name in self._named:
            self._format_named(name)

    # -- formats -------------------------------------------------------------

    def format(self, doc: Document, node: Node, where: str) -> TableFormat | None:
        """A format reference: a format name or an inline mapping; None after reporting a problem."""
        if is_null(node):
            return EMPTY_FORMAT
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            name = node.value
            if name not in self._named:
                if self.deferring:
                    raise FormatNotYetKnown(name)
                doc.error(
                    node, f"unknown format {name!r} in {where}" + suggest(name, self._named, "known formats")
                )
                return None
            if name in self._building:
                cycle = " -> ".join([*self._building[self._building.index(name) :], name])
                doc.error(node, f"format {name!r} contains itself ({cycle}); a table cannot nest itself")
                return None
            return self._format_named(name)
        if isinstance(node, MappingNode) and node.tag == MAP_TAG:
            return self._format_inline(doc, node, where)
        doc.error(
            node,
            f"the format of {where} must be a format name or a mapping with 'fields', "
            f"got {describe_node(node)}",
        )
        return None

    def _format_named(self, name: str) -> TableFormat | None:
        if name not in self._built:
            doc, node, _ = self._named[name]
            self._building.append(name)
            try:
                self._built[name] = self._format_body(doc, node, f"format {name!r}")
            finally:
                self._building.pop()
        return self._built[name]

    def _format_inline(self, doc: Document, node: MappingNode, where: str) -> TableFormat | None:
        key = id(node)
        if key in self._inline:
            return self._inline[key]
        if key in self._inline_active:
            doc.error(
                node, f"the format of {where} contains itself through an alias; a table cannot nest itself"
            )
            return None
        self._inline_active.add(key)
        try:
            result = self._format_body(doc, node, f"the format of {where}")
        finally:
            self._inline_active.discard(key)
        self._inline[key] = result
        return result

    def _format_body(self, doc: Document, node: Node, where: str) -> TableFormat | None:
        entries = as_mapping(doc, node, where)
        entries.check_keys(FORMAT_KEYS)
        entries.text("description")
        counts = {
            "min_records": entries.integer("min_records", minimum=0),
            "max_records": entries.integer("max_records", minimum=1, nullable=True),
        }
        fields: list[Field] = []
        seen: dict[str, Node] = {}
        failed = False
        for index, item in enumerate(entries.sequence("fields"), start=1):
            name_node = _name_node(item)
            if name_node is not None:
                first = seen.get(name_node.value)
                if first is not None:
                    doc.error(
                        name_node,
                        f"field {name_node.value!r} is defined twice in {where}; "
                        f"the first is at {doc.at(first).seen_from(doc.at(name_node))}",
                    )
                    failed = True
                seen.setdefault(name_node.value, name_node)
            field = self._field(doc, item, f"field {index} of {where}")
            if field is None:
                failed = True
            else:
                fields.append(field)
        # The record counts are checked whatever else is wrong in the format.
        known = {k: v for k, v in counts.items() if v is not MISSING}
        if not entries.failed & {"min_records", "max_records"}:
            entries.report(format_problems(**known), prefix=f"{where}: ")
        if failed or entries.bad:
            return None
        return TableFormat(fields=fields, **known)

    def _field(self, doc: Document, node: Node, where: str) -> Field | None:
        entries = as_mapping(doc, node, where)
        if entries.bad and entries.node is None:
            return None  # not a mapping: reported
        name: Any = MISSING
        name_node = entries.get("name")
        if entries.require("name"):
            name = entries.text("name")
            if name is not MISSING:
                name = self.strings.setdefault(name, name)
                try:
                    check_name(name, "field name")
                except InvalidName as exc:
                    entries.error(name_node, str(exc), "name")
                entries.where = f"field {name!r}"
        else:
            entries.failed.add("name")
        entries.check_keys(FIELD_KEYS)
        kwargs: dict[str, Any] = {
            "description": self._text(entries, "description"),
            "nullable": entries.flag("nullable"),
            "min": entries.number("min"),
            "max": entries.number("max"),
            "pattern": entries.text("pattern"),
        }
        format_node = entries.get("format")
        if format_node is not None and not is_null(format_node):
            kwargs["format"] = self.format(doc, format_node, entries.where)
            if kwargs["format"] is None:
                entries.bad = True
                entries.failed.add("format")
        default_type = FieldType.TABLE if "format" in kwargs else FieldType.STRING
        kwargs["type"] = entries.typed("type", default_type, FieldType.parse, _TYPES)
        kwargs["default"] = entries.value("default", NO_DEFAULT)
        kwargs["allowed"] = self._allowed(entries)
        kwargs["labels"] = self._labels(entries)
        given = {k: v for k, v in kwargs.items() if v is not MISSING and k != "description"}
        if entries.bad:
            # Report what is inconsistent among the values that could be read, then give up.
            unknown = entries.failed | {"name"}
            entries.report(field_problems(name=name, unknown=unknown, where=entries.where, **given))
            return None
        try:
            return Field(name=name, **{k: v for k, v in kwargs.items() if v is not MISSING})
        except InvalidDefinition as exc:
            entries.report(exc.problems)
        except CORE_ERRORS as exc:  # anything the checks did not foresee is still one problem
            entries.report([("", f"{entries.where}: {exc}")])
        return None

    @staticmethod
    def _labels(entries: Entries) -> Any:
        node = entries.get("labels")
        if node is None or is_null(node):
            return MISSING
        values = entries.value("labels")
        if values is MISSING:
            return MISSING
        if not isinstance(values, dict):
            entries.error(
                node,
                f"'labels' in {entries.where} must map values to labels, e.g. {{1: up, 2: down}}, "
                f"got {describe(values)}",
                "labels",
            )
            return MISSING
        return values

    @staticmethod
    def _allowed(entries: Entries) -> Any:
        node = entries.get("allowed")
        if node is None or is_null(node):
            return MISSING
        values = entries.value("allowed")
        if values is MISSING:
            return MISSING
        if not isinstance(values, list):
            entries.error(
                node,
                f"'allowed' in {entries.where} must be a list of values, got {describe(values)}",
                "allowed",
            )
            return MISSING
        for item, value in zip(node.value, values, strict=True):
            if isinstance(value, (list, dict)):
                entries.error(
                    item,
                    f"allowed values of {entries.where} must be single values, got {describe(value)}",
                    "allowed",
                )
        return values

    # -- events ----------------------------------------------------------------

    def event(self, doc: Document, key: Node, node: Node) -> EventDefinition | None:
        """The definition under ``key``; None after reporting every problem it has."""
        name = key.value
        named = True
        try:
            check_name(name, "event name")
        except InvalidName as exc:
            doc.error(key, str(exc))
            named = False  # the rest of the definition is still read and checked
        where = f"event {name!r}"
        entries = as_mapping(doc, node, where)
        entries.check_keys(EVENT_KEYS)
        kwargs: dict[str, Any] = {
            "description": self._text(entries, "description"),
            "help": self._text(entries, "help"),
            "level": entries.level("level"),
            "persistent": entries.flag("persistent"),
            "expiration": entries.duration("expiration", nullable=True),
            "permissions": entries.permission("permissions"),
            "fire_permissions": entries.permission("fire_permissions"),
            "group": self._text(entries, "group", nullable=True),
            "hidden": entries.flag("hidden"),
            "requires_acknowledgement": entries.flag("requires_acknowledgement"),
            "category": self._category(entries),
            "instructions": self._text(entries, "instructions"),
        }
        format_node = entries.get("format")
        if format_node is not None:
            kwargs["format"] = self.format(doc, format_node, where)
            if kwargs["format"] is None:
                entries.bad = True
                entries.failed.add("format")
        kwargs["alarm"] = read_alarm(entries)
        kwargs["message"] = self._message(doc, entries, kwargs.get("format", EMPTY_FORMAT), where)
        given = {k: v for k, v in kwargs.items() if v is not MISSING}
        if entries.bad or not named:
            checked = {k: v for k, v in given.items() if k in _CHECKED_EVENT_KEYS}
            problems = definition_problems(name=name, unknown=entries.failed | {"name"}, **checked)
            alarm = given.get("alarm")
            if isinstance(alarm, AlarmSpec):  # its problems too, not one fix and check at a time
                problems += alarm_problems(
                    alarm,
                    persistent=given.get("persistent", False),
                    format=given.get("format", EMPTY_FORMAT),
                    where=where,
                    unknown=entries.failed,
                )
            entries.report(problems)
            return None
        try:
            definition = EventDefinition(name=name, **given)
        except InvalidDefinition as exc:
            entries.report(exc.problems)
        except CORE_ERRORS as exc:
            entries.report([("", f"{where}: {exc}")])
        else:
            if definition.alarm is not None and definition.alarm.clears:
                at = clears_location(entries)
                if at is not None:
                    self.clears_at[id(definition)] = at
            return definition
        return None

    @staticmethod
    def _message(doc: Document, entries: Entries, fmt: TableFormat | None, where: str) -> Any:
        """The ``message`` template, compiled against the event's format (unchecked when the
        format failed); a problem is reported at its column in the file when it can be."""
        text = entries.text("message", nullable=True)
        if not isinstance(text, str):
            return MISSING
        try:
            return compile_template(text, fmt, where=f"message of {where}")
        except InvalidTemplate as exc:
            node = entries.get("message")
            assert node is not None
            doc.problems.add(_inside(doc, node, exc.column), exc.message)
            entries.bad = True
            entries.failed.add("message")
            return MISSING

    @staticmethod
    def _category(entries: Entries) -> Any:
        """The ``category`` value (a Category), MISSING when absent or after reporting it."""
        value = entries.text("category", nullable=True)
        if value is MISSING or value is None:
            return MISSING
        if not isinstance(value, str):
            return MISSING  # text() reported it
        try:
            return Category.parse(value)
        except InvalidCategory as exc:
            entries.error(entries.get("category"), str(exc), "category")  # type: ignore[arg-type]
            return MISSING

    def _text(self, entries: Entries, key: str, *, nullable: bool = False) -> Any:
        """A string value, shared with equal strings read before (descriptions repeat a lot)."""
        value = entries.text(key, nullable=nullable)
        if isinstance(value, str):
            return self.strings.setdefault(value, value)
        return value


_TYPES = "one of " + ", ".join(t.value for t in FieldType)

CORE_ERRORS = (ValueError, TypeError, OverflowError)
"""What a core constructor could raise besides InvalidDefinition on input nobody foresaw."""

_CHECKED_EVENT_KEYS = frozenset(
    ("persistent", "expiration", "hidden", "requires_acknowledgement", "group", "format")
)


def _inside(doc: Document, node: Node, column: int | None) -> Location:
    """Where column ``column`` (from 1) of a scalar's text is in the file: exact for a
    one-line plain or quoted scalar without escapes, else the scalar itself."""
    at = doc.at(node)
    if column is None or not isinstance(node, ScalarNode) or node.start_mark.line != node.end_mark.line:
        return at
    quoted = node.style in ("'", '"')
    width = node.end_mark.column - node.start_mark.column - (2 if quoted else 0)
    if node.style not in (None, "'", '"') or width != len(node.value):
        return at  # escapes or folding: columns of the text are not columns of the file
    return Location(at.file, at.line, at.column + (1 if quoted else 0) + column - 1)


def _name_node(item: Node) -> ScalarNode | None:
    """The ``name:`` value of a field mapping, if it is a plain string (for the duplicate check)."""
    if isinstance(item, MappingNode):
        for key, value in item.value:
            if isinstance(key, ScalarNode) and key.value == "name" and isinstance(value, ScalarNode):
                return value if value.tag == "tag:yaml.org,2002:str" else None
    return None
