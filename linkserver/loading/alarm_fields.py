"""The alarm keys of an event definition in YAML: ``reduction_key``, ``clears``, ``auto_clear``,
``alarm_level`` (docs/alarms.md, docs/yaml.md).

:func:`read_alarm` reads them into a core :class:`~linkserver.core.alarms.AlarmSpec` (what
depends on the format is checked by the definition itself); :func:`check_clears` checks, per
set of definitions a context gets, that every event a ``clears`` names is defined there and
raises alarms whose key the clearing event can render.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from yaml.nodes import Node, ScalarNode, SequenceNode

from linkserver.core.alarms import AlarmLevel, AlarmSpec, KeyTemplateError, parse_key
from linkserver.core.definitions import EventDefinition
from linkserver.loading.entries import Entries
from linkserver.loading.problems import Location, Problems, suggest
from linkserver.loading.yamlnodes import MISSING, describe_node

ALARM_KEYS = ("reduction_key", "clears", "auto_clear", "alarm_level")


def read_alarm(entries: Entries) -> Any:
    """The definition's AlarmSpec; MISSING when it has none of the keys (or after reporting)."""
    if not any(key in entries for key in ALARM_KEYS):
        return MISSING
    where = entries.where
    key_text = entries.text("reduction_key", None)
    template = None
    if isinstance(key_text, str):
        try:
            template = parse_key(key_text)
        except KeyTemplateError as exc:
            entries.error(entries.get("reduction_key"), f"{where}: {exc}", "reduction_key")  # type: ignore[arg-type]
    clears = _names(entries, "clears")
    auto_clear = entries.duration("auto_clear", None, nullable=True)
    level = entries.typed("alarm_level", AlarmLevel.HIGHEST, AlarmLevel.parse, "highest or last")
    if entries.failed & set(ALARM_KEYS):
        return MISSING
    return AlarmSpec(reduction_key=template, clears=clears, auto_clear=auto_clear, level=level)


def _names(entries: Entries, key: str) -> tuple[str, ...]:
    node = entries.get(key)
    if node is None:
        return ()
    items = [node] if isinstance(node, ScalarNode) else entries.sequence(key)
    names: list[str] = []
    for item in items:
        if not (isinstance(item, ScalarNode) and item.tag == "tag:yaml.org,2002:str"):
            entries.error(
                item,
                f"{key!r} in {entries.where} must name events (a name or a list), got {describe_node(item)}",
                key,
            )
        elif item.value in names:
            entries.error(item, f"{entries.where} lists {item.value!r} twice in {key!r}", key)
        else:
            names.append(item.value)
    if isinstance(node, SequenceNode) and not node.value:
        entries.error(node, f"{key!r} in {entries.where} is empty; name the events it clears", key)
    return tuple(names)


def clears_location(entries: Entries) -> Location | None:
    node: Node | None = entries.get("clears")
    return entries.doc.at(node) if node is not None else None


def check_clears(
    definitions: Mapping[str, EventDefinition],
    locations: Mapping[int, Location],
    problems: Problems,
    user: str,
    defined_anywhere: Mapping[str, Collection[bool]],
) -> None:
    """Report each ``clears`` of ``definitions`` (the set a context gets) that names an event the set
    lacks, one that raises no alarms, or one whose key reads data the clearing event has not.
    ``defined_anywhere``: every event name read -> the persistent flags of those read without error."""
    for definition in definitions.values():
        spec = definition.alarm
        if spec is None or not spec.clears:
            continue
        at = locations.get(id(definition))
        if at is None:
            continue
        where = f"event {definition.name!r}"
        for name in spec.clears:
            cleared = definitions.get(name)
            if cleared is None:
                if name in defined_anywhere and not defined_anywhere[name]:
                    continue  # every definition of it was wrong: reported already
                if name in defined_anywhere:
                    message = (
                        f"{where} clears {name!r}, which {user} (using it) does not define; "
                        f"define {name!r} there too or remove it from 'clears'"
                    )
                else:
                    message = f"{where} clears {name!r}, which no context file defines" + suggest(
                        name, definitions, "events here"
                    )
                problems.add(at, message)
                continue
            template = cleared.alarm.reduction_key if cleared.alarm is not None else None
            if template is None:
                problems.add(
                    at,
                    f"{where} clears {name!r}, which raises no alarms (it has no reduction_key); "
                    f"give {name!r} a reduction_key or remove it from 'clears'",
                )
                continue
            missing = [field for field in template.data_fields if definition.format.field(field) is None]
            if missing:
                names = ", ".join(f"data.{field}" for field in missing)
                problems.add(
                    at,
                    f"{where} clears {name!r}, whose reduction key {template.text!r} reads {names}; "
                    f"{definition.name!r} has no such field, so it cannot tell which alarm it clears: "
                    "add the field to its format",
                )
