"""Event definitions: what may be fired in a context and how it is treated."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

import attrs

from linkserver.core.alarms import AlarmSpec, alarm_problems
from linkserver.core.categories import Category, derive_category
from linkserver.core.display import data_labels
from linkserver.core.errors import InvalidDefinition, InvalidTemplate
from linkserver.core.formats import EMPTY_FORMAT, TableFormat
from linkserver.core.levels import Level, Permission
from linkserver.core.paths import is_valid_name
from linkserver.core.templates import Template, compile_template


def _level(value: object) -> Level:
    return Level.parse(value)


def _permission(value: object) -> Permission:
    return Permission.parse(value)


def _category(value: object) -> Category | None:
    return None if value is None else Category.parse(value)


@attrs.frozen(kw_only=True)
class EventDefinition:
    """One event a context can fire.

    ``permissions`` is the level needed to receive (and read from history)
    events of this definition, ``fire_permissions`` the level needed to fire
    one. ``expiration`` (persistent definitions only) overrides the server's
    default; the server's expiration times table overrides both.
    ``requires_acknowledgement`` marks events an operator must acknowledge.
    ``category`` (linkserver.core.categories) is derived from the rest when not given.
    ``alarm`` (linkserver.core.alarms): how its events raise or clear alarms; None: they do not.
    ``message`` is the template operators read first (linkserver.core.templates): a string
    is compiled against ``format`` here (InvalidDefinition naming the unknown field), a
    :class:`Template` is used as given. ``instructions`` tell an operator what to do.

    A fired event keeps a reference to its definition for showing it
    (:attr:`Event.message <linkserver.core.events.Event.message>`): :meth:`message_for`
    and :meth:`labels_for` render at read time, never on the fire path.
    """

    name: str
    description: str = ""
    help: str = ""
    level: Level = attrs.field(default=Level.INFO, converter=_level)
    persistent: bool = False
    expiration: timedelta | None = None
    permissions: Permission = attrs.field(default=Permission.OBSERVER, converter=_permission)
    fire_permissions: Permission = attrs.field(default=Permission.OPERATOR, converter=_permission)
    group: str | None = None
    hidden: bool = False
    requires_acknowledgement: bool = False
    format: TableFormat = EMPTY_FORMAT
    category: Category = attrs.field(default=None, converter=_category)  # None: derived
    alarm: AlarmSpec | None = None
    message: Template | None = None
    instructions: str = ""

    def __attrs_post_init__(self) -> None:
        template_problem = None
        if isinstance(self.message, str) and isinstance(self.format, TableFormat):
            try:
                object.__setattr__(
                    self,
                    "message",
                    compile_template(self.message, self.format, where=f"message of event {self.name!r}"),
                )
            except InvalidTemplate as exc:
                template_problem = ("message", exc.message)
        if self.category is None:
            derived = derive_category(
                self.name if isinstance(self.name, str) else "",
                group=self.group if isinstance(self.group, str) else None,
                requires_acknowledgement=self.requires_acknowledgement is True,
            )
            object.__setattr__(self, "category", derived)
        problems = definition_problems(
            name=self.name,
            persistent=self.persistent,
            expiration=self.expiration,
            hidden=self.hidden,
            requires_acknowledgement=self.requires_acknowledgement,
            group=self.group,
            format=self.format,
            message=self.message if template_problem is None else None,
            instructions=self.instructions,
        )
        problems += alarm_problems(
            self.alarm, persistent=self.persistent, format=self.format, where=f"event {self.name!r}"
        )
        if template_problem is not None:
            problems.append(template_problem)
        if problems:
            raise InvalidDefinition(problems=problems)

    def message_for(self, event: Any) -> str:
        """What operators read first about ``event`` (one of this definition's): the rendered
        message template, else the description, else the event name. Never raises."""
        if self.message is not None:
            return self.message.render(event).strip()  # an empty last value leaves no blank
        return self.description or self.name

    def labels_for(self, event: Any) -> list[dict[str, Any]] | None:
        """The labels of ``event``'s coded values, per record (see core.display.data_labels)."""
        return data_labels(self.format, event.data)


def definition_problems(
    *,
    name: Any,
    persistent: Any = False,
    expiration: Any = None,
    hidden: Any = False,
    requires_acknowledgement: Any = False,
    group: Any = None,
    format: Any = EMPTY_FORMAT,  # noqa: A002 - the attribute's name
    message: Any = None,
    instructions: Any = "",
    unknown: Collection[str] = (),
    where: str | None = None,
) -> list[tuple[str, str]]:
    """Every inconsistency of a definition's attributes as ``(key, message)``; empty when valid.

    ``unknown`` names attributes whose value could not be read; the checks
    that depend on them are left out. ``where`` names the definition in
    messages (default ``event 'NAME'``).
    """
    found: list[tuple[str, str]] = []
    if "name" not in unknown and not (isinstance(name, str) and is_valid_name(name)):
        found.append(("name", f"invalid event name {name!r}: use letters, digits and '_' only"))
    where = where or f"event {name!r}"
    flags = {"persistent": persistent, "hidden": hidden, "requires_acknowledgement": requires_acknowledgement}
    for flag, value in flags.items():
        if flag not in unknown and not isinstance(value, bool):
            found.append((flag, f"{where}: {flag} must be true or false"))
    persistence_known = "persistent" not in unknown and isinstance(persistent, bool)
    if expiration is not None and "expiration" not in unknown:
        if not isinstance(expiration, timedelta):
            found.append(("expiration", f"{where}: expiration must be a duration such as 10d"))
        else:
            if persistence_known and not persistent:
                found.append(
                    (
                        "expiration",
                        f"{where}: expiration is set but the event is not persistent; "
                        "remove the expiration or set persistent: true",
                    )
                )
            if expiration <= timedelta(0):
                found.append(("expiration", f"{where}: expiration must be positive"))
    if (
        requires_acknowledgement is True
        and "requires_acknowledgement" not in unknown
        and persistence_known
        and not persistent
    ):
        found.append(
            (
                "requires_acknowledgement",
                f"{where}: only persistent events can be acknowledged; set persistent: true",
            )
        )
    if group is not None and "group" not in unknown and not isinstance(group, str):
        found.append(("group", f"{where}: group must be a string"))
    if "format" not in unknown and not isinstance(format, TableFormat):
        found.append(("format", f"{where}: format must be a TableFormat"))
    if message is not None and "message" not in unknown and not isinstance(message, (Template, str)):
        found.append(("message", f"{where}: message must be a template string"))
    if "instructions" not in unknown and not isinstance(instructions, str):
        found.append(("instructions", f"{where}: instructions must be text"))
    return found
