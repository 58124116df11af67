"""The ``rules:`` section of the server configuration: alert rules (docs/rules.md).

Declared once (:class:`RuleConfig`, :class:`StepConfig`) and read by the one
section reader with ``file:line:column`` errors::

    rules:
      - name: error_burst
        kind: count                  # count, absence, threshold or escalation
        mask: "devices.*"
        event: error
        count: 5
        within: 10m
        per: context                 # context, data.FIELD or rule
      - name: silent_device
        kind: absence
        mask: "devices.*"
        event: measurement
        within: 5m

What one file cannot know (does the event exist under the mask, do the
filters fit its format, can the alert context hold the rule's events) is
checked with the contexts by :func:`check_rules` (``linkserver check`` and
every start).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import attrs

from linkserver.core.catalog import Catalog
from linkserver.core.definitions import EventDefinition
from linkserver.core.durations import format_duration
from linkserver.core.errors import FilterError
from linkserver.core.filters import parse_filter
from linkserver.core.filters.check import known_result
from linkserver.core.levels import Level
from linkserver.core.paths import parse_path
from linkserver.core.rules import (
    ALARMS,
    ALERT,
    CLEARED,
    ESCALATED,
    EVENTS,
    PER_CONTEXT,
    PER_RULE,
    PLACEHOLDERS,
    SEVERITIES,
    Rule,
    RuleKind,
    Step,
    placeholders,
)
from linkserver.core.tree import ContextTree
from linkserver.loading.entries import Entries
from linkserver.loading.problems import Location, Problems, describe, suggest
from linkserver.loading.sections import (
    Reading,
    choice,
    duration,
    filter_expression,
    integer,
    items,
    located,
    section,
    setting,
    text,
)
from linkserver.loading.sections import flag as a_flag
from linkserver.loading.sections import level as a_level
from linkserver.loading.sections import mask as a_mask
from linkserver.loading.sections import name as a_name
from linkserver.loading.yamlnodes import MISSING

ALERTS = "alerts"
KINDS = tuple(kind.value for kind in RuleKind)
# Keys that only some kinds read (the rest apply to every kind).
KIND_KEYS: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.COUNT: ("count", "within", "per", "clear_message"),
    RuleKind.ABSENCE: ("within", "per", "clear_message"),
    RuleKind.THRESHOLD: ("open", "close", "per", "clear_message"),
    RuleKind.ESCALATION: ("steps", "repeat", "source"),
}
REQUIRED: dict[RuleKind, tuple[str, ...]] = {
    RuleKind.COUNT: ("count", "within"),
    RuleKind.ABSENCE: ("within",),
    RuleKind.THRESHOLD: ("open", "close"),
    RuleKind.ESCALATION: ("steps",),
}
OPTIONAL = tuple(sorted({key for keys in KIND_KEYS.values() for key in keys}))


def _per(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str) and value not in (PER_CONTEXT, PER_RULE):
        field = value[5:] if value.startswith("data.") else ""
        if not field.isidentifier():
            entries.error(
                entries.get(key),  # type: ignore[arg-type]
                f"'per' in {entries.where} must be 'context', 'rule' or 'data.FIELD', got {value!r}",
                key,
            )
            return MISSING
    return value


def _alert(entries: Entries, key: str, reading: Reading) -> Any:
    value = entries.text(key)
    if isinstance(value, str):
        try:
            parse_path(value)
        except ValueError as exc:
            entries.error(entries.get(key), f"'alert' in {entries.where}: {exc}", key)  # type: ignore[arg-type]
            return MISSING
    return value


def _notify(entries: Entries, key: str, reading: Reading) -> Any:
    found = []
    for node in entries.sequence(key):
        value = reading.doc.plain(node)
        if not isinstance(value, str) or not value:
            entries.error(node, f"each of 'notify' in {entries.where} must be a name, got {describe(value)}")
            continue
        found.append(value)
    return tuple(found)


@attrs.frozen(kw_only=True)
class StepConfig:
    """One escalation step: ``after`` the alert fired, raise to ``level``, tell ``notify``."""

    after: timedelta = setting(read=duration(), required=True, doc="time since the alert fired")
    level: Level | None = setting(None, a_level(), doc="level of 'escalated' (default: one above)")
    notify: tuple[str, ...] = setting((), _notify, doc="who is told (names, recorded in the event)")
    location: Location | None = located("after")


def _steps(entries: Entries, key: str, reading: Reading) -> Any:
    found = items(StepConfig, where=f"step {{index}} of {entries.where}")(entries, key, reading)
    if not found and key in entries and not entries.bad:
        entries.error(entries.get(key), f"'steps' in {entries.where} needs at least one step", key)  # type: ignore[arg-type]
    return found


@section(
    "rules",
    read=items(
        where="rule {index}",
        rename=("name", "rule {!r}"),
        unique=("name",),
        duplicate="rule {name!r} is already defined at {first}; give each rule its own name",
        duplicate_at="name",
    ),
)
@attrs.frozen(kw_only=True)
class RuleConfig:
    """An alert rule (docs/rules.md): watches ``event`` under ``mask`` and fires ``alert``,
    ``alertCleared`` or ``escalated`` in the context ``alert`` (default ``alerts.NAME``)."""

    name: str = setting(read=a_name("rule name"), required=True)
    kind: str = setting(read=choice(*KINDS), required=True, doc="count, absence, threshold or escalation")
    mask: str = setting("**", a_mask(), doc="contexts watched")
    event: str = setting(read=a_name("event name"), required=True, doc="event watched")
    filter: str | None = setting(None, filter_expression(), doc="only events for which this holds")
    per: str = setting(PER_CONTEXT, _per, doc="key of windows and alerts: context, data.FIELD or rule")
    count: int = setting(1, integer(minimum=1), doc="count: events within 'within' that open the alert")
    within: timedelta | None = setting(None, duration(), doc="count: the window; absence: the silence")
    open: str | None = setting(None, filter_expression(), doc="threshold: the filter that opens the alert")
    close: str | None = setting(None, filter_expression(), doc="threshold: the filter that clears it")
    steps: tuple[StepConfig, ...] = setting((), _steps, doc="escalation: the steps")
    repeat: timedelta | None = setting(
        None, duration(), doc="escalation: again this often after the last step"
    )
    alert: str | None = setting(None, _alert, doc="context fired in (default alerts.NAME)")
    level: Level | None = setting(None, a_level(), doc="level of the alert (default: the definition's)")
    severity: str = setting("medium", choice(*SEVERITIES), doc="the alert's severity field")
    message: str | None = setting(None, text(), doc="the alert's message ({key}, {count}...)")
    clear_message: str | None = setting(None, text(), doc="the message of alertCleared")
    enabled: bool = setting(True, a_flag(), doc="false: checked, listed and dry-run, but not evaluated")
    source: str = setting(EVENTS, choice(EVENTS, ALARMS), doc="escalation: events or alarms (the alarm list)")
    location: Location | None = located()
    event_location: Location | None = located("event")
    filter_location: Location | None = located("filter")
    open_location: Location | None = located("open")
    close_location: Location | None = located("close")
    per_location: Location | None = located("per")
    alert_location: Location | None = located("alert")

    def check(self, entries: Entries) -> None:
        kind = RuleKind(self.kind)
        for key in OPTIONAL:
            if key in entries and key not in KIND_KEYS[kind]:
                entries.error(
                    entries.key_node(key) or entries.get(key),  # type: ignore[arg-type]
                    f"{key!r} does not apply to {entries.where} of kind {kind}; it applies to "
                    + ", ".join(str(k) for k, keys in KIND_KEYS.items() if key in keys),
                    key,
                )
        for key in REQUIRED[kind]:
            if key not in entries:
                entries.error(entries.node, f"{entries.where} of kind {kind} needs {key!r}")  # type: ignore[arg-type]
        if kind is RuleKind.COUNT and self.count < 1:
            entries.error(entries.get("count"), f"'count' in {entries.where} must be at least 1", "count")  # type: ignore[arg-type]
        for index, (before, step) in enumerate(zip(self.steps, self.steps[1:], strict=False), start=2):
            if step.after <= before.after:
                entries.error(
                    entries.get("steps"),  # type: ignore[arg-type]
                    f"steps of {entries.where} must come later and later: step {index} "
                    f"(after {format_duration(step.after)}) is not after step {index - 1} "
                    f"(after {format_duration(before.after)}); 'after' counts from the alert",
                    "steps",
                )
        for key in ("message", "clear_message"):
            template = getattr(self, key)
            if template is None:
                continue
            try:
                names = placeholders(template)
            except ValueError as exc:
                entries.error(entries.get(key), f"{key!r} in {entries.where} is malformed: {exc}", key)  # type: ignore[arg-type]
                continue
            known = PLACEHOLDERS[kind]
            for name in names:
                if name not in known:
                    entries.error(
                        entries.get(key),  # type: ignore[arg-type]
                        f"{key!r} in {entries.where} names {{{name}}}; a {kind} rule's message may use "
                        + ", ".join("{" + n + "}" for n in sorted(known)),
                        key,
                    )

    @property
    def alert_path(self) -> str:
        return self.alert or f"{ALERTS}.{self.name}"

    def to_rule(self) -> Rule:
        """The core rule (the values are valid: the reader checked them)."""
        return Rule(
            name=self.name,
            kind=RuleKind(self.kind),
            mask=self.mask,
            event=self.event,
            filter=parse_filter(self.filter) if self.filter else None,
            per=self.per,
            count=self.count,
            within=self.within,
            open=parse_filter(self.open) if self.open else None,
            close=parse_filter(self.close) if self.close else None,
            steps=tuple(Step(after=s.after, level=s.level, notify=s.notify) for s in self.steps),
            repeat=self.repeat,
            alert=self.alert_path,
            level=self.level,
            severity=self.severity,
            message=self.message,
            clear_message=self.clear_message,
            source=self.source,
        )


def rule_events(kind: RuleKind) -> tuple[str, ...]:
    """The events a rule of ``kind`` fires in its alert context."""
    return (ESCALATED,) if kind is RuleKind.ESCALATION else (ALERT, CLEARED)


def watched_definitions(tree: ContextTree, mask: str, event: str) -> list[EventDefinition]:
    """The definitions named ``event`` a rule under ``mask`` can see: in the contexts the
    mask matches now and in every template (contexts added at run time get those)."""
    return tree.definitions_under((mask,), (event,))


def check_rules(rules: Iterable[RuleConfig], catalog: Catalog, problems: Problems, *, complete: bool) -> None:
    """Each rule against the definitions: the event exists under its mask, its filters fit
    the event's format, ``per`` names a field it has, an escalated event requires
    acknowledgement, and the alert context defines (or will define) what the rule fires.
    ``complete``: every context file was read (else unknown events are not reported)."""
    tree = ContextTree.from_catalog(catalog)
    for config in rules:
        where = config.location or Location("<rules>", 1, 1)
        definitions = watched_definitions(tree, config.mask, config.event)
        if not definitions:
            if complete:
                known = {name for c in tree.match(config.mask) for name in c.definitions}
                known.update(name for t in tree.templates.values() for name in t)
                problems.add(
                    config.event_location or where,
                    f"rule {config.name!r} watches event {config.event!r}, which no context under "
                    f"{config.mask!r} defines" + suggest(config.event, known, "events there"),
                )
            continue
        for key, at in (
            ("filter", config.filter_location),
            ("open", config.open_location),
            ("close", config.close_location),
        ):
            text_value = getattr(config, key)
            if text_value is None:
                continue
            try:
                parsed = parse_filter(text_value)
                parsed.check_any(definitions, f"{config.event!r} under {config.mask!r}")
            except FilterError as exc:
                problems.add(
                    at or where,
                    f"{key!r} of rule {config.name!r} cannot match {config.event!r}: {exc.message}",
                )
                continue
            if known_result(parsed.ast, {"name": config.event}) is False:
                problems.add(
                    at or where,
                    f"{key!r} of rule {config.name!r} cannot match {config.event!r}: it never holds for "
                    f"an event named {config.event!r}, the only event the rule watches",
                )
            elif known_result(parsed.ast, {"name": config.event}, mask=config.mask) is False:
                problems.add(
                    at or where,
                    f"{key!r} of rule {config.name!r} cannot match {config.event!r}: it never holds for "
                    f"a context under {config.mask!r}, the rule's mask (no context matches both)",
                )
        if config.per.startswith("data."):
            field = config.per[5:]
            if not any(d.format.field(field) is not None for d in definitions):
                fields = sorted({f for d in definitions for f in d.format.field_names})
                problems.add(
                    config.per_location or where,
                    f"'per' of rule {config.name!r} names data.{field}, not a field of {config.event!r}"
                    + suggest(field, fields, "its fields"),
                )
        kind = RuleKind(config.kind)
        if config.source == ALARMS:
            if not any(d.alarm is not None and d.alarm.raises for d in definitions):
                problems.add(
                    config.event_location or where,
                    f"rule {config.name!r} escalates alarms of {config.event!r}, which raises none: "
                    "give its definition a reduction_key, or escalate its events (source: events)",
                )
        elif kind is RuleKind.ESCALATION and not any(d.requires_acknowledgement for d in definitions):
            problems.add(
                config.event_location or where,
                f"rule {config.name!r} escalates {config.event!r}, which does not require "
                "acknowledgement, so it could never stop; escalate an event with "
                "requires_acknowledgement: true (e.g. alert)",
            )
        _check_alert_context(config, kind, tree, problems, where)


def _check_alert_context(
    config: RuleConfig, kind: RuleKind, tree: ContextTree, problems: Problems, where: Location
) -> None:
    path = config.alert_path
    at = config.alert_location or where
    context = tree.find(path)
    if context is not None:
        definitions = context.definitions
    else:
        parent = tree.find(path.rpartition(".")[0])
        if parent is None:
            problems.add(
                at,
                f"rule {config.name!r} fires in {path!r}, which does not exist and has no parent "
                f"to add it to; name a context under {ALERTS!r} (e.g. {ALERTS}.{config.name})",
            )
            return
        definitions = parent.child_definitions
    missing = [name for name in rule_events(kind) if name not in definitions]
    if missing:
        problems.add(
            at,
            f"rule {config.name!r} fires {', '.join(missing)} in {path!r}, which does not define "
            f"{'it' if len(missing) == 1 else 'them'}; use a context with the alert template "
            f"(a child of {ALERTS!r})",
        )
