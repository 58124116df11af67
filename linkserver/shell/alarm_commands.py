"""The shell's ``alarms`` and ``alarm`` commands (docs/alarms.md); registered by importing.

``alarms`` lists the alarm list with the filters of ``history`` (a mask relative to here, an
event name, ``--filter``, ``--level``) and a ``--state``; ``--live`` then prints every change
as it happens (the ``alarmChanged`` events) until Ctrl-C. ``alarm ID`` shows one alarm;
``alarm ID ack TEXT``, ``alarm ID unack`` and ``alarm ID clear`` change it.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

from linkserver import interrupt
from linkserver.core.alarms import ALARM_CHANGED
from linkserver.shell import render
from linkserver.shell.session import Arg, Shell, ShellError, _ctx, command, filter_text, parse_time, wire

STATES = {"open": ["open"], "acknowledged": ["acknowledged"], "cleared": ["cleared"], "all": []}
DEFAULT_STATES = ["open", "acknowledged"]
HEADERS = ["ID", "STATE", "LEVEL", "COUNT", "LAST", "CONTEXT", "EVENT", "MESSAGE / ACK"]


def _when(text: str) -> str:
    return render.time_text(datetime.fromisoformat(text), short=True)


def _row(alarm: dict[str, Any]) -> list[render.Cell]:
    acks = alarm.get("acknowledgements") or []
    shown = alarm.get("message") or alarm["key"]  # the key where the last event is no longer stored
    tail = shown + (f"  ({acks[-1]['user']}: {acks[-1]['text']})" if acks else "")
    return [
        f"#{alarm['id']}",
        alarm["state"],
        render.level_cell(alarm["level"]),
        str(alarm["count"]),
        _when(alarm["last"]),
        _ctx(alarm["context"]),
        alarm["name"],
        tail,
    ]


def alarms_table(alarms: list[dict[str, Any]], *, colour: bool = False, width: int | None = None) -> str:
    return render.table(HEADERS, [_row(a) for a in alarms], colour=colour, width=width)


@command(
    "alarms",
    "alarms [MASK] [EVENT] [--filter EXPR] [--since T] [--until T] [--level L] [--state S] [--limit N] "
    "[--oldest] [--all] [--live] [--seconds S]",
    "the alarm list here and below (or matching MASK): open and acknowledged unless --state says otherwise",
    Arg("mask", "mask", "context mask relative to here (default: here and below); /** is everything", "?"),
    Arg("event", "event", "event name (default: all)", "?"),
    Arg(
        "--filter",
        "filter",
        "filter expression on the alarm's context, name, level and its last event's data",
    ),
    Arg("--since", "time", "last occurred at or after: 2026-05-01T08:00, 2026-05-01, 2h (ago), today"),
    Arg("--until", "time", "last occurred before (the same forms)"),
    Arg("--level", "level", "lowest level"),
    Arg("--state", "text", "open, acknowledged, cleared or all (default: open and acknowledged)"),
    Arg("--limit", "count", "alarms to show (default 50)"),
    Arg("--oldest", "flag", "oldest first"),
    Arg("--all", "flag", "every alarm that matches, page after page (--limit a page)"),
    Arg("--live", "flag", "then print every change as it happens, until Ctrl-C"),
    Arg("--seconds", "seconds", "with --live: stop after S seconds"),
    example="alarms\nalarms /net.** linkDown --state all --since 1d\nalarms --level ERROR --live",
)
def _alarms(shell: Shell, a: argparse.Namespace) -> None:
    if a.state is not None and a.state not in STATES:
        raise ShellError(f"alarms --state: {a.state!r} is not one of {', '.join(STATES)}")
    mask = wire(shell.mask(a.mask))
    event = None if a.event in (None, "*") else a.event
    query: dict[str, Any] = {
        "state": STATES[a.state] if a.state else DEFAULT_STATES,
        "mask": mask,
        "event": event,
        "filter": filter_text(a.filter),
        "min_level": a.level,
        "since": parse_time(a.since) if a.since else None,
        "until": parse_time(a.until) if a.until else None,
        "limit": a.limit or 50,
        "order": "oldest" if a.oldest else None,
    }
    page = shell.client.alarms(**query)
    alarms = page["alarms"]
    while a.all and page.get("next_cursor"):
        page = shell.client.alarms(**query, cursor=page["next_cursor"])
        alarms = alarms + page["alarms"]
    shell.write(
        alarms_table(alarms, colour=shell.colour, width=shell.console.width) if alarms else "(no alarms)"
    )
    if page.get("next_cursor"):
        shell.write(f"more alarms than {query['limit']}: --all shows every one, or narrow the query")
    if a.live:
        _live(shell, query, a.seconds)


def _live(shell: Shell, query: dict[str, Any], seconds: float | None) -> None:
    """Print each alarmChanged of the query's alarms until Ctrl-C (or ``seconds``)."""
    conditions = []
    if query["event"]:
        conditions.append(f"data.name == {query['event']!r}")
    if query["state"]:
        conditions.append(_state_condition(query["state"]))
    deadline = None if seconds is None else time.monotonic() + seconds
    seen = 0
    with interrupt.live_view() as stop:  # Ctrl-C sets stop, never raises in the client's code
        subscription = shell.client.subscribe(
            query["mask"],
            ALARM_CHANGED,
            filter=" and ".join(conditions) or None,
            min_level=query["min_level"],
        )
        shell.write(f"watching alarms of {query['mask']}; Ctrl-C returns to the prompt")
        with subscription:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                left = interrupt.TICK
                if deadline is not None:
                    left = max(0.0, min(left, deadline - time.monotonic()))
                item = subscription.get(timeout=left)
                if item is None:
                    if subscription.ended:
                        break
                    continue
                record = item.record
                if query["filter"] and not _matches(shell, query, int(record["id"])):
                    continue
                seen += 1
                by = f" by {record['by']}" if record.get("by") else ""
                level = render.paint(item.level.name, render.level_style(item.level), shell.colour)
                line = (
                    f"{render.time_text(item.created, short=True)}  {record['change']}{by}  #{record['id']}  "
                    f"{record['state']}  {level}  count {record['count']}  {record['key']}"
                    + (f"  {record['message']}" if record.get("message") else "")
                )
                shell.write(line)
        if stop.is_set():
            shell.write()  # past the ^C the terminal echoed
        shell.write(f"stopped watching alarms ({seen} change(s))")


# the change that takes an alarm out of a state: an alarm in that state before it, so the view of that
# state shows it leaving (an open alarm cleared or acknowledged, an acknowledged one cleared or unacked)
LEAVING = {"open": ["acknowledged", "cleared"], "acknowledged": ["unacknowledged", "cleared"], "cleared": []}


def _state_condition(states: list[str]) -> str:
    """The alarmChanged filter of a view of these states: changes to an alarm in them after the
    change, or in them before it (the change that takes it out of the view is shown too)."""
    condition = "data.state in [" + ", ".join(repr(s) for s in states) + "]"
    leaving = sorted({change for state in states for change in LEAVING[state]})
    if leaving:
        condition += " or data.change in [" + ", ".join(repr(c) for c in leaving) + "]"
    return f"({condition})"


def _matches(shell: Shell, query: dict[str, Any], alarm_id: int) -> bool:
    """Whether the changed alarm passes the query's filter (which reads more than the change)."""
    criteria = {**query, "filter": f"id == {alarm_id} and ({query['filter']})", "state": [], "limit": 1}
    return bool(shell.client.alarms(**criteria)["alarms"])


@command(
    "alarm",
    "alarm ID [ack TEXT | unack | clear]",
    "one alarm in full; or acknowledge it (asks for the text), unacknowledge or clear it",
    Arg("id", "id", "alarm id"),
    Arg("action", "text", "ack, unack or clear", "?"),
    Arg("text", "text", "what is being done (ack)", "*"),
    example="alarm 7340032\nalarm 7340032 ack replacing the cable\nalarm 7340032 clear",
)
def _alarm(shell: Shell, a: argparse.Namespace) -> None:
    if a.action is None:
        alarm = shell.client.alarm(a.id)
    elif a.action == "ack":
        text = " ".join(a.text).strip()
        if not text:
            answer = shell.console.ask(f"acknowledgement text for alarm #{a.id}: ")
            text = (answer or "").strip()
            if not text:
                shell.write("not acknowledged (no text given)")
                return
        alarm = shell.client.acknowledge_alarm(a.id, text)
    elif a.action == "unack":
        alarm = shell.client.unacknowledge_alarm(a.id)
    elif a.action == "clear":
        alarm = shell.client.clear_alarm(a.id)
    else:
        raise ShellError(
            f"alarm: {a.action!r} is not ack, unack or clear; usage: alarm ID [ack TEXT | unack | clear]"
        )
    shell.write(alarm_detail(alarm, colour=shell.colour))


def alarm_detail(alarm: dict[str, Any], *, colour: bool = False) -> str:
    lines = [
        f"alarm #{alarm['id']}  {alarm['state']}  "
        + render.paint(alarm["level"], render.level_style(alarm["level"]), colour)
        + f"  ({alarm['alarm_level']} level)",
        f"  key      {alarm['key']}",
        *([f"  message  {alarm['message']}"] if alarm.get("message") else []),
        f"  event    {_ctx(alarm['context'])}/{alarm['name']}, last #{alarm['event']}",
        f"  count    {alarm['count']}  (first {_when(alarm['first'])}, last {_when(alarm['last'])})",
    ]
    if alarm.get("auto_clear_at"):
        lines.append(f"  auto     cleared at {_when(alarm['auto_clear_at'])} unless it occurs again")
    for ack in alarm.get("acknowledgements") or []:
        lines.append(f"  ack      {_when(ack['time'])} {ack['user']}: {ack['text']}")
    cleared = alarm.get("cleared")
    if cleared:
        how = {
            "event": f"event #{cleared.get('event')}",
            "user": cleared.get("user"),
            "auto_clear": "auto_clear",
        }
        lines.append(f"  cleared  {_when(cleared['time'])} by {how.get(cleared['by'], cleared['by'])}")
    return "\n".join(lines)
