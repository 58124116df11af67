"""Text the shell shows: aligned tables, level colours, data summaries, definitions and events.

Everything here is pure: values in, a ``str`` out. With ``colour=True`` the
text carries ANSI escape codes (the shell writes them to the terminal as
they are, or through prompt-toolkit's ``ANSI``); with ``colour=False`` it is
plain text, which is what scripts and tests read. Column widths are always
computed on the visible text, never on the escape codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from linkserver.client.alarm_values import event_alarm_facts
from linkserver.core.durations import format_duration
from linkserver.core.events import Event
from linkserver.core.levels import Level

RESET = "\033[0m"
BOLD = "\033[1m"
DIM = "\033[2m"
RED = "\033[31m"
LEVEL_STYLES = {
    Level.NONE: "\033[2m",
    Level.NOTICE: "\033[36m",
    Level.INFO: "\033[32m",
    Level.WARNING: "\033[33m",
    Level.ERROR: "\033[31m",
    Level.FATAL: "\033[1;37;41m",
}
_ANSI = re.compile(r"\033\[[0-9;]*m")
MORE_CHILDREN = 100  # children listed per tree node before "... and N more"

Cell = str | tuple[str, str]  # text, or (ANSI style, text)


def plain(text: str) -> str:
    """``text`` without ANSI escape codes."""
    return _ANSI.sub("", text)


def paint(text: str, style: str, colour: bool) -> str:
    return f"{style}{text}{RESET}" if colour and style and text else text


def level_style(level: Level | str) -> str:
    return LEVEL_STYLES.get(Level.parse(level), "")


def level_cell(level: Level | str) -> Cell:
    return (level_style(level), Level.parse(level).name)


def error_line(message: str, colour: bool) -> str:
    """One line for an error: newlines folded, ``error:`` in red with colour."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return paint("error:", RED, colour) + " " + text


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (limit < 2: unchanged)."""
    if limit < 2 or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Cell]], *, colour: bool = False, width: int | None = None
) -> str:
    """Columns aligned by padding; the last column is cut to fit ``width`` (if given)."""
    body = [[c if isinstance(c, tuple) else ("", str(c)) for c in row] for row in rows]
    head = [(BOLD, h) for h in headers]
    if not body:
        return "(none)"
    widths = [max(len(row[i][1]) for row in [head, *body]) for i in range(len(headers))]
    room = None
    if width is not None:
        room = max(width - sum(w + 2 for w in widths[:-1]), 10)
    lines = []
    for row in [head, *body]:
        cells = []
        for i, (style, text) in enumerate(row):
            last = i == len(row) - 1
            shown = shorten(text, room) if last and room is not None else text
            pad = "" if last else " " * (widths[i] - len(shown))
            cells.append(paint(shown, style, colour) + pad)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# -- values ------------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A data value as an operator reads it: text unquoted, null as ``null``, tables as JSON."""
    if value is None:
        return "null"
    if value == "":
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def data_summary(data: Sequence[Mapping[str, Any]], limit: int = 60) -> str:
    """``k=v, k=v`` of the first record, ``(+N records)`` for the others, cut to ``limit``."""
    if not data:
        return ""
    text = ", ".join(f"{k}={value_text(v)}" for k, v in data[0].items())
    if len(data) > 1:
        text += f" (+{len(data) - 1} record{'s' if len(data) > 2 else ''})"
    return shorten(text, limit)


def time_text(moment: datetime | None, *, millis: bool = False, short: bool = False) -> str:
    """Local time ``YYYY-MM-DD HH:MM:SS`` (``short``: ``MM-DD HH:MM:SS``; with ``.mmm`` if asked)."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    text = local.strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S")
    return text + f".{local.microsecond // 1000:03d}" if millis else text


def seconds_text(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(timedelta(seconds=seconds))


def context_text(path: str) -> str:
    return path or "root"


# -- events ------------------------------------------------------------------------


def acks_text(event: Event, requires: bool) -> str:
    """Count of acknowledgements; ``needed`` when the definition requires one and none was given."""
    if event.acknowledgements:
        return str(len(event.acknowledgements))
    return "needed" if requires else "-"


def history_table(
    events: Sequence[Event], requires_ack: Any = None, *, colour: bool = False, width: int | None = None
) -> str:
    """The history listing: id, time, context, event, level, author, acks, message, data summary
    (coded values as their labels)."""
    needs = requires_ack or (lambda event: False)
    rows = []
    for e in events:
        acks = acks_text(e, bool(needs(e)))
        rows.append(
            [
                str(e.id),
                time_text(e.created, short=True),
                context_text(e.context),
                e.name,
                level_cell(e.level),
                e.author or "-",
                (LEVEL_STYLES[Level.WARNING], acks) if acks == "needed" else acks,
                shorten(e.message or "-", 100),
                data_summary(e.shown_data, 200),
            ]
        )
    headers = ["ID", "TIME", "CONTEXT", "EVENT", "LEVEL", "AUTHOR", "ACKS", "MESSAGE", "DATA"]
    return table(headers, rows, colour=colour, width=width)


def event_line(event: Event, *, colour: bool = False, width: int | None = None) -> str:
    """One live event for ``watch``: time, level, context/name, id, message, data; coloured by level."""
    time = event.created.astimezone().strftime("%H:%M:%S.%f")[:-3]
    head = f"{time} {event.level.name:<7} {context_text(event.context)}/{event.name} #{event.id}"
    if event.message:
        head += f"  {event.message} |"
    room = None if width is None else max(width - len(head) - 2, 10)
    data = data_summary(event.shown_data, room or 200)
    if event.message:
        return paint(f"{head} {data}".rstrip(" |"), level_style(event.level), colour)
    return paint(f"{head}  {data}".rstrip(), level_style(event.level), colour)


def records_table(records: Sequence[Mapping[str, Any]], *, colour: bool = False) -> str:
    """A data table: one column per field (in first-seen order), one row per record."""
    names: list[str] = []
    for record in records:
        names += [k for k in record if k not in names]
    if not names:
        return "(no data)"
    rows = [[value_text(r[n]) if n in r else "" for n in names] for r in records]
    return table(names, rows, colour=colour)


def acks_table(event: Event, *, colour: bool = False, width: int | None = None) -> str:
    rows = [[time_text(a.time), a.user, a.text] for a in event.acknowledgements]
    if not rows:
        return "(no acknowledgements)"
    return table(["TIME", "USER", "TEXT"], rows, colour=colour, width=width)


def event_detail(
    event: Event, definition: Mapping[str, Any] | None, *, colour: bool = False, width: int | None = None
) -> str:
    """Everything about one event: header, properties, data table, acknowledgements."""
    requires = bool(definition and definition.get("requires_acknowledgement"))
    if requires:
        given = len(event.acknowledgements)
        ack = "required, " + (f"given {given}x" if given else "PENDING")
    else:
        ack = f"not required ({len(event.acknowledgements)} given)"
    title = f"event {event.id}  {context_text(event.context)}/{event.name}  "
    lines = [paint(title, BOLD, colour) + paint(event.level.name, level_style(event.level), colour)]
    if event.message:
        lines.append(f"  {event.message}")
    props = [
        ("description", (definition or {}).get("description") or "-"),
        ("created", time_text(event.created, millis=True)),
        ("expires", time_text(event.expires)),
        ("author", event.author or "-"),
        ("group", event.group or "-"),
        ("category", event.category or "-"),
        ("acknowledgement", ack),
        *event_alarm_facts(event.alarms),
    ]
    lines += [f"  {k:<17}{v}" for k, v in props]
    lines += ["", paint("data", BOLD, colour), _indent(records_table(_with_values(event), colour=colour))]
    instructions = (definition or {}).get("instructions") or event.instructions
    if instructions:
        lines += [
            "",
            paint("instructions", BOLD, colour),
            _indent(_wrap(instructions.strip(), (width or 100) - 2)),
        ]
    lines += ["", paint("acknowledgements", BOLD, colour), _indent(acks_table(event, colour=colour))]
    return "\n".join(lines)


def _with_values(event: Event) -> list[dict[str, Any]]:
    """The records with each labelled value as ``label (value)``: both are needed to act on it."""
    shown = event.shown_data
    out = []
    for index, record in enumerate(event.data):
        labelled = shown[index] if index < len(shown) else record
        row = {}
        for key, value in record.items():
            label = labelled.get(key)
            if isinstance(label, str) and label != value and not isinstance(value, (list, tuple, dict)):
                row[key] = f"{label} ({value_text(value)})"
            else:
                row[key] = value
        out.append(row)
    return out


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.splitlines())


# -- definitions and the tree ------------------------------------------------------


def definitions_table(
    definitions: Sequence[Mapping[str, Any]], *, colour: bool = False, width: int | None = None
) -> str:
    """The ``events`` listing: name, level, persistence, how long kept (and why), ack, description."""
    rows = []
    for d in sorted(definitions, key=lambda d: str(d.get("name"))):
        rows.append(
            [
                str(d.get("name")),
                level_cell(d.get("level") or "NONE"),
                "yes" if d.get("persistent") else "no",
                retention_text(d) if d.get("persistent") else "-",
                "yes" if d.get("requires_acknowledgement") else "-",
                (d.get("description") or "") + (" (hidden)" if d.get("hidden") else ""),
            ]
        )
    headers = ["EVENT", "LEVEL", "PERSISTENT", "KEPT", "ACK", "DESCRIPTION"]
    return table(headers, rows, colour=colour, width=width)


def retention_text(definition: Mapping[str, Any]) -> str:
    """How long a persistent definition's events are kept here and why.

    For example ``30d (expiration table: devices.* *)``, ``1d (definition)``.

    The server sends ``retention`` (its expiration table applied in the
    context); without it only the definition's own expiration is known.
    """
    retention = definition.get("retention")
    if not isinstance(retention, Mapping):
        own = definition.get("expiration")
        return f"{seconds_text(own)} (definition)" if own is not None else "server default"
    kept = seconds_text(retention.get("seconds"))
    source = retention.get("source")
    if source == "table":
        return f"{kept} (expiration table: {retention.get('mask')} {retention.get('event')})"
    if source == "definition":
        return f"{kept} (definition)"
    return f"{kept} (server default)"


def field_limits(field: Mapping[str, Any]) -> str:
    """``allowed``, ``min``/``max`` (length for strings), ``pattern`` and labels of a field, in words."""
    parts = []
    if field.get("allowed") is not None:
        parts.append("one of " + ", ".join(value_text(v) for v in field["allowed"]))
    low, high = field.get("min"), field.get("max")
    if low is not None or high is not None:
        what = "length " if field.get("type") == "string" else ""
        parts.append(f"{what}{'' if low is None else low}..{'' if high is None else high}")
    if field.get("pattern"):
        parts.append(f"pattern {field['pattern']}")
    if field.get("labels"):
        parts.append("labels " + ", ".join(f"{value_text(x['value'])}={x['label']}" for x in field["labels"]))
    return "; ".join(parts) or "-"


def field_rows(fields: Sequence[Mapping[str, Any]], prefix: str = "") -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for f in fields:
        kind = str(f.get("type")) + ("?" if f.get("nullable") else "")
        default = value_text(f["default"]) if "default" in f else "-"
        name = prefix + str(f.get("name"))
        rows.append([name, kind, default, field_limits(f), f.get("description") or ""])
        nested = f.get("format")
        if isinstance(nested, Mapping):
            rows += field_rows(nested.get("fields") or [], prefix=name + ".")
    return rows


def records_range(fmt: Mapping[str, Any]) -> str:
    low, high = fmt.get("min_records", 1), fmt.get("max_records", 1)
    if low == high:
        return f"{low} record{'s' if low != 1 else ''}"
    return f"{low}..{'any' if high is None else high} records"


def definition_detail(
    path: str, definition: Mapping[str, Any], *, colour: bool = False, width: int | None = None
) -> str:
    """``show EVENT``: description, help, properties, permissions and the format's fields."""
    d = definition
    title = paint(f"{context_text(path)}/{d.get('name')}", BOLD, colour)
    lines = [f"{title}  {d.get('description') or ''}".rstrip()]
    persistence = f"persistent, kept {retention_text(d)}" if d.get("persistent") else "not stored"
    props = [
        ("level", paint(str(d.get("level")), level_style(d.get("level") or "NONE"), colour)),
        ("history", persistence),
        ("acknowledgement", "required" if d.get("requires_acknowledgement") else "not required"),
        ("permissions", f"receive: {d.get('permissions')}, fire: {d.get('fire_permissions')}"),
        ("group", d.get("group") or "-"),
        ("category", d.get("category") or "-"),
        ("hidden", "yes (only subscriptions naming it)" if d.get("hidden") else "no"),
    ]
    if d.get("message"):
        props.insert(0, ("message", str(d["message"])))
    lines += [f"  {k:<17}{v}" for k, v in props]
    if d.get("instructions"):
        lines += [
            "",
            paint("instructions", BOLD, colour),
            _indent(_wrap(str(d["instructions"]), (width or 100) - 2)),
        ]
    if d.get("help"):
        lines += ["", paint("help", BOLD, colour), _indent(_wrap(str(d["help"]), (width or 100) - 2))]
    fmt = d.get("format") or {}
    lines += ["", paint(f"fields ({records_range(fmt)})", BOLD, colour)]
    rows = field_rows(fmt.get("fields") or [])
    headers = ["FIELD", "TYPE", "DEFAULT", "LIMITS", "DESCRIPTION"]
    lines.append(_indent(table(headers, rows, colour=colour, width=None if width is None else width - 2)))
    return "\n".join(lines)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, max(width, 20))) or text


def tree_text(node: Mapping[str, Any], *, colour: bool = False, limit: int = MORE_CHILDREN) -> str:
    """A tree drawn with box characters; each node shows its name and description."""
    lines: list[str] = []

    def label(n: Mapping[str, Any], root: bool) -> str:
        name = context_text(str(n.get("path") or "")) if root else str(n.get("name"))
        text = paint(name, BOLD, colour)
        if n.get("description"):
            text += "  " + paint(str(n["description"]), DIM, colour)
        return text

    def walk(n: Mapping[str, Any], prefix: str) -> None:
        children = list(n.get("children") or ())
        shown = children[:limit]
        for i, child in enumerate(shown):
            last = i == len(shown) - 1 and len(children) <= limit
            lines.append(prefix + ("└── " if last else "├── ") + label(child, False))
            walk(child, prefix + ("    " if last else "│   "))
        if len(children) > limit:
            lines.append(prefix + f"└── … and {len(children) - limit} more")

    lines.append(label(node, True))
    walk(node, "")
    return "\n".join(lines)


def devices_table(
    devices: Sequence[Mapping[str, Any]], *, colour: bool = False, width: int | None = None
) -> str:
    """``devices``: name, connection (coloured), state, since, last connection event's details."""
    styles = {"connected": LEVEL_STYLES[Level.INFO], "disconnected": LEVEL_STYLES[Level.WARNING]}
    rows: list[list[Cell]] = [
        [
            str(d["name"]),
            (styles.get(str(d.get("connection")), ""), str(d.get("connection") or "unknown")),
            str(d.get("state") or "unknown"),
            time_text(d.get("since")),
            str(d.get("detail") or ""),
        ]
        for d in devices
    ]
    return table(["DEVICE", "CONNECTION", "STATE", "SINCE", "DETAIL"], rows, colour=colour, width=width)
