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

    def explain(self, path: str, definition: EventDefinition) -> Retention | None:
        """How long events of ``definition`` in ``path`` are kept and why; None if not persistent.

        The same resolution as :meth:`lifetime` (which the fire path uses),
        plus where the lifetime comes from: the matching table rule, the
        definition's own ``expiration``, or the server's default.
        """
        if not definition.persistent:
            return None
        for rule in self.rules:
            if (rule.event == "*" or rule.event == definition.name) and rule.mask.matches(path):
                return Retention(rule.expiration, "table", rule)
        if definition.expiration is not None:
            return Retention(definition.expiration, "definition")
        return Retention(self.default, "default")


@attrs.frozen
class Retention:
    """The effective lifetime of a persistent event and its source.

    ``source`` is ``"table"`` (``rule`` is the expiration table entry that
    applies), ``"definition"`` (the definition's ``expiration``) or
    ``"default"`` (the server's default expiration).
    """

    lifetime: timedelta
    source: str
    rule: ExpirationRule | None = None
