"""Event definitions: what may be fired in a context and how it is treated."""

from __future__ import annotations

from datetime import timedelta

import attrs

from linkserver.core.errors import InvalidDefinition
from linkserver.core.formats import EMPTY_FORMAT, TableFormat
from linkserver.core.levels import Level, Permission
from linkserver.core.paths import is_valid_name


def _level(value: object) -> Level:
    return Level.parse(value)


def _permission(value: object) -> Permission:
    return Permission.parse(value)


@attrs.frozen(kw_only=True)
class EventDefinition:
    """One event a context can fire.

    ``permissions`` is the level needed to receive (and read from history)
    events of this definition, ``fire_permissions`` the level needed to fire
    one. ``expiration`` (persistent definitions only) overrides the server's
    default; the server's expiration times table overrides both.
    ``requires_acknowledgement`` marks events an operator must acknowledge.
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

    def __attrs_post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise InvalidDefinition(f"invalid event name {self.name!r}: use letters, digits and '_' only")
        where = f"event {self.name!r}"
        for flag in ("persistent", "hidden", "requires_acknowledgement"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidDefinition(f"{where}: {flag} must be true or false")
        if self.expiration is not None:
            if not isinstance(self.expiration, timedelta):
                raise InvalidDefinition(f"{where}: expiration must be a duration such as 10d")
            if not self.persistent:
                raise InvalidDefinition(
                    f"{where}: expiration is set but the event is not persistent; "
                    "remove the expiration or set persistent: true"
                )
            if self.expiration <= timedelta(0):
                raise InvalidDefinition(f"{where}: expiration must be positive")
        if self.requires_acknowledgement and not self.persistent:
            raise InvalidDefinition(
                f"{where}: only persistent events can be acknowledged; set persistent: true"
            )
        if self.group is not None and not isinstance(self.group, str):
            raise InvalidDefinition(f"{where}: group must be a string")
        if not isinstance(self.format, TableFormat):
            raise InvalidDefinition(f"{where}: format must be a TableFormat")
