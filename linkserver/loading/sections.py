"""Declarative configuration sections: one attrs class per section, one reader for all.

A section of the server configuration (``history:``, ``auth:``, later
``bridges:``, ``rules:``...) is declared once, as an attrs class whose fields
say which key they read and how::

    @section("delivery")
    @attrs.frozen(kw_only=True)
    class DeliverySection:
        queue_size: int = setting(1000, integer(minimum=1), doc="bounded queue of a queued subscription")

Every field made with :func:`setting` is a key of the section (``key=`` to
name it otherwise; a dotted key such as ``"writer.batch_size"`` reads a key
of a nested mapping). Its ``read`` function takes the section's
:class:`~linkserver.loading.entries.Entries`, the key and the
:class:`Reading` under way, reports a wrong value at its node (so every
error keeps ``file:line:column``) and returns the value or ``MISSING`` (the
field's default applies). :func:`read_section` reads any such class: unknown
keys are reported with a "did you mean", required keys are asked for,
:func:`located` fields receive the position of the section or of one of its
values (for checks across files), and a ``check(self, entries)`` method, if
the class has one, checks across fields once the values are read.

Lists and mappings of items are settings too: :func:`items` reads a list of
mappings (``controllers:``), :func:`named_items` a mapping of names to
mappings (``users:``), each item one class read the same way.

:func:`section` registers a top-level section: the configuration reader
reads every registered section, and its value is in
``ServerConfig.sections[name]`` (the sections that predate this module are
also spread into ServerConfig's own fields).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from linkserver.core.errors import FilterError, InvalidName
from linkserver.core.filters import parse_filter
from linkserver.core.paths import check_name, compile_mask
from linkserver.loading.entries import Entries, as_mapping
from linkserver.loading.problems import Location, describe
from linkserver.loading.yamlnodes import MISSING, Document

T = TypeVar("T")
_SETTING = "linkserver.setting"
_LOCATED = "linkserver.located"

Read = Callable[[Entries, str, "Reading"], Any]
"""How a setting's value is read: ``(entries, key, reading) -> value or MISSING``."""


@attrs.define
class Reading:
    """What a read of one configuration file knows besides its YAML: where the file is,
    and the values given on the command line that win over the file's."""

    doc: Document
    base: Path
    """The directory relative paths are relative to (the file's)."""
    data_dir: Path | None = None
    listen: str | None = None

    def absolute(self, text: str) -> Path:
        return Path(os.path.normpath(self.base / Path(text).expanduser()))


@attrs.frozen
class Setting:
    read: Read
    key: str | None
    doc: str
    required: bool
    always: bool


def setting(
    default: Any = MISSING,
    read: Read | None = None,
    *,
    key: str | None = None,
    doc: str = "",
    required: bool = False,
    always: bool = False,
    factory: Callable[[], Any] | None = None,
    eq: bool = True,
) -> Any:
    """A field read from key ``key`` (default: the field's name) by ``read``.

    ``required``: a missing key is an error. ``always``: ``read`` is called
    even when the key is absent (for defaults that depend on the file, such
    as paths). ``doc`` says what the key means (for the reference docs).
    """
    assert read is not None, "a setting needs a read function"
    metadata = {_SETTING: Setting(read, key, doc, required, always)}
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata, eq=eq)
    if default is MISSING:
        return attrs.field(metadata=metadata, eq=eq)
    return attrs.field(default=default, metadata=metadata, eq=eq)


def located(key: str | None = None) -> Any:
    """A field that receives the :class:`Location` of the section (``key`` None) or of
    the value under ``key`` (the section's when absent): where cross-file checks report."""
    return attrs.field(default=None, metadata={_LOCATED: key or ""}, eq=False)


# -- reading ------------------------------------------------------------------


def keys_of(cls: type) -> tuple[str, ...]:
    """The keys a section class reads, in declaration order (a nested mapping's first part once)."""
    found: dict[str, None] = {}
    for key, _field, _spec in _settings(cls):
        found.setdefault(key.partition(".")[0], None)
    return tuple(found)


def _settings(cls: type) -> Iterable[tuple[str, attrs.Attribute[Any], Setting]]:
    for field in attrs.fields(cls):
        spec = field.metadata.get(_SETTING)
        if spec is not None:
            yield spec.key or field.name, field, spec


def read_section(
    cls: type[T],
    entries: Entries,
    reading: Reading,
    *,
    rename: tuple[str, str] | None = None,
    partial: bool = True,
) -> T | None:
    """Read ``entries`` as a ``cls``; problems go to the document. None when the section
    could not be built (a value is wrong) and ``partial`` is False (list items: no
    follow-up errors from half-read items); with ``partial`` the defaults fill in.

    ``rename``: ``(key, template)``, once the value under ``key`` is read
    without error, messages about the rest call the section ``template.format(value)``.
    """
    entries.check_keys(keys_of(cls))
    nested: dict[str, Entries] = {}
    values: dict[str, Any] = {}
    for key, field, spec in _settings(cls):
        where = entries
        part = key
        while "." in part:
            head, _, part = part.partition(".")
            inner = nested.get(head)
            if inner is None:
                inner = nested[head] = where.mapping(head)
                inner.check_keys(
                    tuple(k.split(".", 1)[1] for k, *_ in _settings(cls) if k.startswith(head + "."))
                )
            where = inner
        if spec.required and not where.require(part):
            continue
        if part not in where and not spec.always:
            continue
        bad_before = where.bad
        value = spec.read(where, part, reading)
        if value is not MISSING:
            values[field.name] = value
        if rename is not None and key == rename[0] and isinstance(value, str) and where.bad == bad_before:
            entries.where = rename[1].format(value)
        if where is not entries and where.bad:
            entries.bad = True
    for field in attrs.fields(cls):
        at = field.metadata.get(_LOCATED)
        if at is not None:
            node = (entries.get(at) if at else None) or entries.node or entries.anchor
            values[field.name] = (
                reading.doc.at(node) if node is not None else Location(reading.doc.name, 1, 1)
            )
    if entries.bad and not partial:
        return None
    built = cls(**values)
    check = getattr(built, "check", None)
    if check is not None and not entries.bad:
        check(entries)
        if entries.bad and not partial:
            return None
    return built


# -- read functions -----------------------------------------------------------


def text(*, nullable: bool = False) -> Read:
    return lambda entries, key, reading: entries.text(key, nullable=nullable)


def flag() -> Read:
    """true or false."""
    return lambda entries, key, reading: entries.flag(key)


def level() -> Read:
    """A level name (WARNING) or number."""
    return lambda entries, key, reading: entries.level(key)


def filter_expression() -> Read:
    """A filter expression (docs/filters.md), or null; kept as its text once it parses."""
    return _checked(
        parse_filter,
        FilterError,
        lambda key, entries, exc: f"{key!r} in {entries.where}: {exc}",
        nullable=True,
    )


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Read:
    return lambda entries, key, reading: entries.integer(key, minimum=minimum, maximum=maximum)


def duration(*, positive: bool = True) -> Read:
    return lambda entries, key, reading: entries.duration(key, positive=positive)


def choice(*choices: str) -> Read:
    """One of ``choices`` (strings)."""

    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(value)
        return str(value)

    expected = " or ".join(repr(c) for c in choices)
    return lambda entries, key, reading: entries.typed(key, MISSING, convert, expected)


MASK_HINT = "a mask is like devices.*, users.** or **"


def mask() -> Read:
    """A context mask (``devices.*``, ``**``)."""
    return _checked(compile_mask, InvalidName, lambda key, entries, exc: f"{exc}; {MASK_HINT}")


def name(what: str, *, star: bool = False) -> Read:
    """A name (``[A-Za-z0-9_]+``) of ``what`` (e.g. ``"event name"``); ``star`` allows ``*``."""

    def check(value: str) -> None:
        if not (star and value == "*"):
            check_name(value, what)

    hint = " (or '*' for every event)" if star else ""
    return _checked(check, InvalidName, lambda key, entries, exc: f"{exc}{hint}")


def _checked(
    check: Callable[[str], object],
    errors: type[Exception],
    message: Callable[[str, Entries, Exception], str],
    *,
    nullable: bool = False,
) -> Read:
    """Text that ``check`` accepts (or null, when ``nullable``); what ``check`` raises
    (``errors``) is reported at the value as ``message(key, entries, error)``."""

    def read(entries: Entries, key: str, reading: Reading) -> Any:
        value = entries.text(key, nullable=nullable)
        if isinstance(value, str):
            try:
                check(value)
            except errors as exc:
                entries.error(entries.get(key), message(key, entries, exc), key)  # type: ignore[arg-type]
                return MISSING
        return value

    return read


def mapping_value() -> Read:
    """Any mapping, taken as written (a plugin's options: the plugin checks them)."""

    def read(entries: Entries, key: str, reading: Reading) -> Any:
        value = entries.value(key, {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            entries.error(
                entries.get(key),  # type: ignore[arg-type]
                f"{key!r} in {entries.where} must be a mapping, got {describe(value)}",
                key,
            )
            return MISSING
        return value

    return read


class _Items:
    """The read function of :func:`items` and :func:`named_items` (its ``cls`` may be bound
    by :func:`section` to the class it decorates)."""

    def __init__(self, cls: type | None, read: Callable[[type, Entries, str, Reading], Any]) -> None:
        self.cls = cls
        self._read = read

    def __call__(self, entries: Entries, key: str, reading: Reading) -> Any:
        assert self.cls is not None, "items() of which class?"
        return self._read(self.cls, entries, key, reading)


def items(
    cls: type | None = None,
    *,
    where: str,
    rename: tuple[str, str] | None = None,
    unique: tuple[str, ...] = (),
    duplicate: str = "",
    duplicate_at: str | None = None,
) -> Read:
    """A list of mappings, each read as a ``cls`` (None: the class :func:`section`
    decorates); returns a tuple of them.

    ``where`` names an item in messages (``"controller {index}"``, counted
    from 1). ``unique`` fields may not repeat: ``duplicate`` is the message,
    formatted with those fields and ``first`` (where the first one is); it
    is reported at the value of ``duplicate_at`` or at the item.
    """

    def read(cls: type, entries: Entries, key: str, reading: Reading) -> Any:
        doc = reading.doc
        found: list[Any] = []
        seen: dict[tuple[Any, ...], Location] = {}
        for index, node in enumerate(entries.sequence(key), start=1):
            item = as_mapping(doc, node, where.format(index=index))
            if item.node is None:
                if not item.bad:
                    doc.error(node, f"{item.where} must be a mapping, got null")
                continue
            built = read_section(cls, item, reading, rename=rename, partial=False)
            if built is None:
                continue
            if unique:
                fields = {f: getattr(built, f) for f in unique}
                identity = tuple(fields.values())
                here = doc.at(node)
                first = seen.get(identity)
                if first is not None:
                    at = item.get(duplicate_at) if duplicate_at else None
                    doc.error(at or node, duplicate.format(first=first.seen_from(here), **fields))
                    continue
                seen[identity] = here
            found.append(built)
        return tuple(found)

    return _Items(cls, read)


def named_items(cls: type | None = None, *, what: str, where: str) -> Read:
    """A mapping of names (each checked as a ``what``, e.g. ``"user name"``) to mappings,
    each read as a ``cls`` (None: the class :func:`section` decorates); a field read
    with :func:`item_name` receives the name. Returns ``{name: item}``."""

    def read(cls: type, entries: Entries, key: str, reading: Reading) -> Any:
        found: dict[str, Any] = {}
        inner = entries.mapping(key, _where(entries, key))
        for key_node, node in inner.items.values():
            item_name = key_node.value
            try:
                check_name(item_name, what)
            except InvalidName as exc:
                inner.error(key_node, str(exc))
                continue
            item = as_mapping(reading.doc, node, where.format(name=item_name))
            built = read_section(cls, item, _Named(reading, item_name), partial=False)
            if built is not None:
                found[item_name] = built
        return found

    return _Items(cls, read)


class _Named(Reading):
    """A reading that also knows the name of the item being read (``named_items``)."""

    def __init__(self, reading: Reading, item_name: str) -> None:
        super().__init__(reading.doc, reading.base, reading.data_dir, reading.listen)
        self.item_name = item_name


def item_name() -> Read:
    """The name an item of :func:`named_items` is known by (its key in the mapping)."""
    return lambda entries, key, reading: getattr(reading, "item_name", MISSING)


# -- the registry of top-level sections --------------------------------------


def subsection(cls: type) -> Read:
    """A nested mapping read as a ``cls`` (absent or null: every default)."""
    return lambda entries, key, reading: read_section(
        cls, entries.mapping(key, _where(entries, key)), reading
    )


def _where(entries: Entries, key: str) -> str:
    return f"{key!r}" if entries.where == TOP else f"{key!r} in {entries.where}"


TOP = "the configuration"


@attrs.frozen
class SectionType:
    name: str
    read: Read
    cls: type
    doc: str


SECTIONS: dict[str, SectionType] = {}
"""Top-level sections by key, in registration order (the configuration reader reads each)."""


def section(name: str, read: Read | None = None) -> Callable[[type[T]], type[T]]:
    """Register the decorated attrs class as the top-level section ``name:``.

    A mapping section is read as the class (:func:`subsection`); give
    ``read`` for another shape, e.g. ``read=items(TheClass, where="bridge {index}")``
    for a list of them.
    """

    def register(cls: type[T]) -> type[T]:
        known = SECTIONS.get(name)
        if known is not None and known.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"configuration section {name!r} is declared twice: {known.cls} and {cls}")
        if isinstance(read, _Items) and read.cls is None:
            read.cls = cls
        SECTIONS[name] = SectionType(name, read or subsection(cls), cls, (cls.__doc__ or "").strip())
        return cls

    return register


def read_sections(top: Entries, reading: Reading) -> dict[str, Any]:
    """Every registered section read from the top-level mapping ``top`` (absent: defaults)."""
    top.check_keys(tuple(SECTIONS))
    return {name: declared.read(top, name, reading) for name, declared in SECTIONS.items()}
