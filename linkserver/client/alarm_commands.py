"""``linkserver alarms`` (docs/alarms.md): list the alarm list with the filters of ``history``
(plus ``--state``), ``show`` one alarm in full (first and last occurrence, acknowledgements,
who or what cleared it), and ``ack``, ``unack`` and ``clear`` an alarm by its id."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from linkserver.client.cli import (
    OK,
    _client,
    _guarded,
    _moment,
    _positive,
    _print_json,
    format_table,
)

STATES = ("open", "acknowledged", "cleared")


def add_alarm_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    alarms = subparsers.add_parser("alarms", help="the alarm list: list, show, ack, unack, clear")
    commands = alarms.add_subparsers(dest="alarm_command", metavar="list|show|ack|unack|clear", required=True)
    listing = commands.add_parser(
        "list", parents=[common], help="list alarms (default: open and acknowledged)"
    )
    listing.add_argument(
        "--state", action="append", choices=[*STATES, "all"], help="repeatable (default: open, acknowledged)"
    )
    listing.add_argument("--mask", action="append", help="context mask (repeatable), e.g. 'devices.**'")
    listing.add_argument("--event", action="append", help="event name (repeatable)")
    listing.add_argument("--filter", help="filter expression, e.g. 'data.ifIndex == 3'")
    listing.add_argument("--min-level", help="lowest level")
    last = "last occurred {which}: 2026-05-01T08:00Z, 2026-05-01, 2h (ago), today, yesterday"
    listing.add_argument("--since", type=_moment, help=last.format(which="at or after"))
    listing.add_argument("--until", type=_moment, help=last.format(which="before"))
    listing.add_argument("--oldest-first", action="store_true", help="oldest alarms first (default: newest)")
    listing.add_argument("--limit", type=_positive, default=20, help="alarms per page (default 20)")
    listing.add_argument("--cursor", help="continue after a previous page (its next_cursor)")
    listing.set_defaults(handler=_guarded(_list))
    show = commands.add_parser(
        "show", parents=[common], help="one alarm in full: occurrences, acknowledgements, how it was cleared"
    )
    show.add_argument("id", type=int, help="the alarm id")
    show.set_defaults(handler=_guarded(_show))
    ack = commands.add_parser("ack", parents=[common], help="acknowledge an alarm (operator)")
    ack.add_argument("id", type=int, help="the alarm id")
    ack.add_argument("text", nargs="+", help="what is being done")
    ack.set_defaults(handler=_guarded(_change))
    for name, what in (("unack", "remove an alarm's acknowledgements"), ("clear", "clear an alarm by hand")):
        command = commands.add_parser(name, parents=[common], help=f"{what} (operator)")
        command.add_argument("id", type=int, help="the alarm id")
        command.set_defaults(handler=_guarded(_change))


def states(given: list[str] | None) -> list[str]:
    if not given:
        return ["open", "acknowledged"]
    return [] if "all" in given else list(dict.fromkeys(given))


def _time(text: str) -> str:
    return datetime.fromisoformat(text).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def alarm_rows(alarms: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for alarm in alarms:
        acks = alarm.get("acknowledgements") or []
        last = f"{acks[-1]['user']}: {acks[-1]['text']}" if acks else "-"
        rows.append(
            [
                str(alarm["id"]),
                alarm["state"],
                alarm["level"],
                str(alarm["count"]),
                _time(alarm["last"]),
                alarm["key"],
                alarm.get("message") or "-",  # null: its last event is no longer stored
                last,
            ]
        )
    return rows


ALARM_HEADERS = ["ID", "STATE", "LEVEL", "COUNT", "LAST", "KEY", "MESSAGE", "ACK"]


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        page = client.alarms(
            state=states(args.state),
            mask=args.mask,
            event=args.event,
            filter=args.filter,
            min_level=args.min_level,
            since=args.since,
            until=args.until,
            order="oldest" if args.oldest_first else None,
            limit=args.limit,
            cursor=args.cursor,
        )
    if args.json:
        _print_json(page)
        return OK
    print(format_table(ALARM_HEADERS, alarm_rows(page["alarms"])))
    if page.get("next_cursor"):
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)
    return OK


def alarm_detail(alarm: dict[str, Any]) -> str:
    """One alarm as ``linkserver alarms show`` prints it: a line per part."""
    cleared = alarm.get("cleared")
    lines = [
        f"alarm {alarm['id']}  {alarm['state']}  {alarm['level']} ({alarm['alarm_level']} of its events)",
        f"  key              {alarm['key']}",
        f"  message          {alarm.get('message') or '-'}",
        f"  event            {alarm['context'] or 'root'}/{alarm['name']}, last {alarm['event']}",
        f"  count            {alarm['count']}",
        f"  first            {_time(alarm['first'])}",
        f"  last             {_time(alarm['last'])}",
    ]
    if alarm.get("auto_clear_at") and not cleared:
        lines.append(f"  auto_clear       {_time(alarm['auto_clear_at'])} unless it occurs again")
    for ack in alarm.get("acknowledgements") or []:
        lines.append(f"  acknowledged     {_time(ack['time'])} by {ack['user']}: {ack['text']}")
    if cleared:
        by = {"event": f"event {cleared.get('event')}", "user": f"user {cleared.get('user')}"}
        lines.append(f"  cleared          {_time(cleared['time'])} by {by.get(cleared['by'], cleared['by'])}")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        alarm = client.alarm(args.id)
    if args.json:
        _print_json(alarm)
    else:
        print(alarm_detail(alarm))
    return OK


def _change(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.alarm_command == "ack":
            alarm = client.acknowledge_alarm(args.id, " ".join(args.text))
        elif args.alarm_command == "unack":
            alarm = client.unacknowledge_alarm(args.id)
        else:
            alarm = client.clear_alarm(args.id)
    if args.json:
        _print_json(alarm)
    else:
        print(f"alarm {alarm['id']} ({alarm['key']}) is {alarm['state']}")
    return OK
