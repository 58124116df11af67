"""``linkserver rules list`` and ``linkserver rules test RULE --since 7d`` (docs/rules.md).

``list`` shows each alert rule with what it watches, whether it is enabled and
what it holds now (open alerts, counts, escalations); ``test`` is the dry run:
what a rule would have fired over stored history, fired nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from linkserver.client.cli import OK, _client, _guarded, _moment, _print_json, format_table
from linkserver.core.durations import InvalidDuration, parse_duration


def add_rule_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    rules = subparsers.add_parser("rules", help="alert rules: list them, dry-run one over history")
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="list|test")
    listing = actions.add_parser("list", parents=[common], help="the rules and their state")
    listing.set_defaults(handler=_guarded(_list))
    test = actions.add_parser(
        "test", parents=[common], help="what a rule would have fired over stored history (fires nothing)"
    )
    test.add_argument("rule", help="the rule's name")
    test.add_argument(
        "--since",
        type=_since,
        default="1d",
        help="from: how long before --until (7d, 6h, 30m; default 1d) or a time as history takes it "
        "(2026-05-01T08:00Z, a local 2026-05-01, today, yesterday)",
    )
    test.add_argument(
        "--until", type=_moment, help="to (default now): a time as --since takes it, or 2h (ago)"
    )
    test.set_defaults(handler=_guarded(_test))


def _since(text: str) -> str:
    """--since: a duration is sent as it is (that long before --until), anything else as the
    RFC 3339 time it names."""
    try:
        parse_duration(text)
    except InvalidDuration:
        return _moment(text)
    return text


def summary(state: dict[str, Any]) -> str:
    """A rule's state in a few words: open alerts, keys counting or watched, escalations."""
    parts = []
    if state.get("open"):
        parts.append(f"open: {', '.join(sorted(state['open']))}")
    if state.get("counting"):
        parts.append(f"counting {_many(len(state['counting']), 'key')}")
    if state.get("watching"):
        parts.append(f"watching {_many(state['watching'], 'key')}")
    if state.get("escalating"):
        parts.append(f"escalating {_many(len(state['escalating']), 'event')}")
    return "; ".join(parts) or "-"


def _many(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def rule_rows(rules: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            r["name"],
            r["kind"] + ("" if r["enabled"] else " (disabled)"),
            r["alert"],
            str(r["fired"]),
            summary(r["state"]),
            r["description"],
        )
        for r in rules
    ]


def firing_rows(fired: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (f["at"][:19].replace("T", " "), f["event"], f["key"], str(f["data"].get("message", "")))
        for f in fired
    ]


def _list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        found = client.rules()
    if args.json:
        _print_json(found)
        return OK
    print(format_table(("rule", "kind", "fires in", "fired", "now", "watches"), rule_rows(found)))
    return OK


def _test(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.test_rule(args.rule, since=args.since, until=args.until)
    if args.json:
        _print_json(result)
        return OK
    fired = result["fired"]
    print(
        f"rule {result['rule']}: {result['events']} stored events from {result['since'][:19]} "
        f"to {result['until'][:19]}; it would have fired {len(fired)}:"
    )
    print(format_table(("when", "event", "key", "message"), firing_rows(fired)))
    return OK
