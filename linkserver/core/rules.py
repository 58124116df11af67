"""Alert rules: the model (what a rule watches and what it fires), no state.

A rule watches one event name in the contexts a mask matches (optionally
narrowed by a filter) and fires ordinary events in an ``alerts`` context:

- ``count``: ``count`` matching events within ``within`` (per key) open an
  alert (``alert``); when the window no longer holds that many, it clears
  (``alertCleared``);
- ``absence``: no matching event for ``within`` (per key) opens an alert; the
  next matching event clears it;
- ``threshold``: the ``open`` filter opens an alert, the ``close`` filter
  clears it (hysteresis: between the two nothing changes);
- ``escalation``: each matching event (its definition requires
  acknowledgement) not acknowledged by a step's ``after`` fires
  ``escalated``, step by step (then every ``repeat``) until acknowledged.

The state each kind keeps (windows, open alerts, escalation steps) is in
:mod:`linkserver.core.rule_state`; what the rules fire is a :class:`Firing`,
turned into a fire by the server (or shown by a dry run).
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from linkserver.core.durations import format_duration
from linkserver.core.events import Event
from linkserver.core.filters import Filter
from linkserver.core.levels import Level
from linkserver.core.paths import display

ALERT = "alert"
CLEARED = "alertCleared"
ESCALATED = "escalated"
PER_CONTEXT = "context"
PER_RULE = "rule"  # one key for every matching event
EVENTS, ALARMS = "events", "alarms"  # what an escalation rule escalates
SEVERITIES = ("low", "medium", "high", "critical")


class RuleKind(enum.StrEnum):
    COUNT = "count"
    ABSENCE = "absence"
    THRESHOLD = "threshold"
    ESCALATION = "escalation"


# The names a rule's message may use, per kind (checked at load time).
PLACEHOLDERS: dict[RuleKind, frozenset[str]] = {
    RuleKind.COUNT: frozenset({"rule", "key", "event", "mask", "count", "within", "context"}),
    RuleKind.ABSENCE: frozenset({"rule", "key", "event", "mask", "within", "last_seen"}),
    RuleKind.THRESHOLD: frozenset({"rule", "key", "event", "mask", "context"}),
    RuleKind.ESCALATION: frozenset(
        {"rule", "step", "alert_id", "alert_context", "alert_event", "elapsed", "notified", "level"}
    ),
}

DEFAULT_MESSAGES: dict[RuleKind, tuple[str, str]] = {  # (opening, clearing)
    RuleKind.COUNT: (
        "{count} {event} events within {within} in {key}",
        "fewer than {count} {event} events within {within} in {key} again",
    ),
    RuleKind.ABSENCE: ("no {event} from {key} for {within}", "{event} from {key} again"),
    RuleKind.THRESHOLD: ("{event} in {key} crossed the threshold", "{event} in {key} back within bounds"),
    RuleKind.ESCALATION: (
        "{alert_event} {alert_id} in {alert_context} not acknowledged after {elapsed} "
        "(step {step}; notified: {notified})",
        "",
    ),
}


def placeholders(template: str) -> list[str]:
    """The ``{name}`` fields of a message template; ValueError for a malformed one."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


class _Shown(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # visible, never an exception in the firer


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with its fields filled in; an unknown or unrenderable field stays visible."""
    try:
        return string.Formatter().vformat(template, (), _Shown(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        return template


@attrs.frozen(kw_only=True)
class Step:
    """One escalation step: ``after`` the alert was fired, at ``level`` (None: one above the
    alert's, or the previous step's), telling ``notify`` (names: people, rotas, channels)."""

    after: timedelta
    level: Level | None = None
    notify: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Rule:
    """One alert rule. ``per`` is the key windows and alerts are kept per: ``context``
    (the event's context), ``data.FIELD`` (a field of its first record) or ``rule`` (one
    key). ``alert`` is the context the rule fires in. Validated by the loader."""

    name: str
    kind: RuleKind
    mask: str
    event: str
    filter: Filter | None = None
    per: str = PER_CONTEXT
    count: int = 1
    within: timedelta | None = None
    open: Filter | None = None
    close: Filter | None = None
    steps: tuple[Step, ...] = ()
    repeat: timedelta | None = None
    alert: str = ""
    level: Level | None = None
    severity: str = "medium"
    message: str | None = None
    clear_message: str | None = None
    source: str = EVENTS

    def key_of(self, event: Event) -> str:
        per = self.per
        if per == PER_CONTEXT:
            return display(event.context)
        if per == PER_RULE:
            return self.name
        value = event.record.get(per[5:]) if event.data else None
        return "null" if value is None else str(value)

    @property
    def timed(self) -> bool:
        """Whether the rule acts on time passing (needs ticks), not only on events."""
        return self.kind is not RuleKind.THRESHOLD

    def describe(self) -> str:
        """One line: what the rule watches and when it fires."""
        what = f"{self.event} in {self.mask}" + (f" where {self.filter.text}" if self.filter else "")
        per = f" per {self.per}" if self.per != PER_RULE else ""
        if self.kind is RuleKind.COUNT:
            return f"{self.count} x {what} within {format_duration(self.within or timedelta())}{per}"
        if self.kind is RuleKind.ABSENCE:
            return f"no {what} for {format_duration(self.within or timedelta())}{per}"
        if self.kind is RuleKind.THRESHOLD:
            opening = self.open.text if self.open else "?"
            closing = self.close.text if self.close else "?"
            return f"{what}{per}: opens when {opening}, closes when {closing}"
        steps = ", ".join(format_duration(s.after) for s in self.steps)
        again = f", then every {format_duration(self.repeat)}" if self.repeat else ""
        if self.source == ALARMS:
            return f"alarms of {what} open and unacknowledged after {steps}{again}"
        return f"{what} not acknowledged after {steps}{again}"

    def messages(self) -> tuple[str, str]:
        """The opening and clearing message templates: the rule's, else the defaults, which
        name the key as what it is (``in devices.plc1``; ``in data.ifIndex 3`` per a field,
        ``in devices.*`` the rule's mask per rule: a bare ``in 3`` said nothing)."""
        opening, clearing = DEFAULT_MESSAGES[self.kind]
        if self.per == PER_RULE:
            subject = "{mask}"
        elif self.per != PER_CONTEXT:
            subject = f"{self.per} {{key}}"
        else:
            subject = "{key}"
        opening, clearing = opening.replace("{key}", subject), clearing.replace("{key}", subject)
        return self.message or opening, self.clear_message or clearing


@attrs.frozen(kw_only=True)
class Firing:
    """An event a rule fires (or, in a dry run, would fire): ``event`` (``alert``,
    ``alertCleared`` or ``escalated``) in ``rule.alert`` at ``at`` with ``data``.
    ``cause`` is the id of the event that made it fire, None when time did."""

    rule: str
    event: str
    key: str
    at: datetime
    data: dict[str, Any]
    level: Level | None = None
    cause: int | None = None

    def json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "event": self.event,
            "key": self.key,
            "at": self.at.isoformat(),
            "level": str(self.level) if self.level is not None else None,
            "cause_id": self.cause,
            "data": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in self.data.items()},
        }
