"""The expiration times table: how long persistent events live."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import attrs

from linkserver.core.definitions import EventDefinition
from linkserver.core.paths import Mask, check_name, compile_mask

DEFAULT_EXPIRATION = timedelta(days=10)


@attrs.frozen(kw_only=True)
class ExpirationRule:
    mask: Mask = attrs.field(converter=lambda m: m if isinstance(m, Mask) else compile_mask(m))
    event: str = "*"
    expiration: timedelta = DEFAULT_EXPIRATION

    def __attrs_post_init__(self) -> None:
        if self.event != "*":
            check_name(self.event, "event name")
        if self.expiration <= timedelta(0):
            raise ValueError(f"expiration for {self.mask}/{self.event} must be positive")


class ExpirationTable:
    """Resolves the lifetime of an event: table rule > definition > default.

    The most specific rule wins: the more specific mask first, then a named
    event over ``*``. The table never makes a non-persistent event persistent.
    """

    def __init__(self, rules: Iterable[ExpirationRule] = (), default: timedelta = DEFAULT_EXPIRATION) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: (r.mask.specificity, r.event != "*"), reverse=True))
        self.default = default

    def lifetime(self, path: str, definition: EventDefinition) -> timedelta | None:
        """The lifetime of an event of ``definition`` fired in ``path``; None if not persistent."""
        if not definition.persistent:
            return None
        for rule in self.rules:
            if (rule.event == "*" or rule.event == definition.name) and rule.mask.matches(path):
                return rule.expiration
        return definition.expiration or self.default
