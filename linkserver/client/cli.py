"""Client commands of the ``linkserver`` CLI: fire, history, ack, watch, tree, status (and,
in :mod:`linkserver.client.user_commands`, user, login, logout).

They talk to a running server (``--url``, default: ``$LINKSERVER_URL``, the
local credentials file's, or http://127.0.0.1:7341). A command logs in only
when it holds no session token for that server and user
(:mod:`linkserver.client.sessions`); an API token (``--token``,
``$LINKSERVER_TOKEN``) is used as is. Exit codes: 0 ok, 1 the server
refused, 2 usage, 3 server unreachable, 4 authentication failed (or too
many failed logins: wait and retry).
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from linkserver.client.alarm_values import event_alarm_facts
from linkserver.client.errors import AuthenticationFailed, BadRequest, ServerUnavailable
from linkserver.client.values import UsageError, is_text, loads_strict, parse_assignments, parse_time
from linkserver.core.errors import LinkServerError, TooManyAttempts

if TYPE_CHECKING:
    import threading

    # Imported where used: a command loads what it needs and no more (whole-process
    # start-up is most of what a one-shot command costs; tools/bench/cli.py).
    from linkserver.client.sync import Client
    from linkserver.core.events import Event
    from linkserver.typing import Gap

OK, FAILED, USAGE, UNREACHABLE, AUTH = 0, 1, 2, 3, 4
PASSWORD_ENV = "LINKSERVER_PASSWORD"

Handler = Callable[[argparse.Namespace], int]


def connection_options() -> argparse.ArgumentParser:
    """The options every client command takes: --url, --user, --token, --json."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--url", help="server address (default: $LINKSERVER_URL or the local server)")
    group.add_argument(
        "--user", help="log in as this user (password: --password, $LINKSERVER_PASSWORD or prompt)"
    )
    group.add_argument("--password", help=argparse.SUPPRESS)
    group.add_argument("--token", help="API or session token (default: $LINKSERVER_TOKEN)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return common


def add_client_commands(subparsers: Any) -> None:
    """Register fire, history, show, ack, watch, tree, user, login and logout on an ``add_subparsers()``."""
    from linkserver.client.alarm_commands import add_alarm_commands
    from linkserver.client.resource_commands import add_resource_commands
    from linkserver.client.rule_commands import add_rule_commands
    from linkserver.client.user_commands import add_user_commands

    common = connection_options()
    fire = subparsers.add_parser("fire", parents=[common], help="fire an event in a running server")
    fire.add_argument("path", help="context path, e.g. devices.plc7")
    fire.add_argument("event", help="event name, e.g. measurement")
    fire.add_argument("values", nargs="*", metavar="key=value", help="data fields, typed by the definition")
    fire.add_argument("--data", help="the whole data table as JSON (instead of key=value)")
    fire.add_argument("--level", help="override the definition's level (NOTICE, WARNING...)")
    fire.add_argument("--durable", action="store_true", help="answer only once the event is stored")
    fire.set_defaults(handler=_guarded(_fire))

    history = subparsers.add_parser("history", parents=[common], help="query stored events")
    history.add_argument("--mask", action="append", help="context mask (repeatable), e.g. 'devices.**'")
    history.add_argument("--event", action="append", help="event name (repeatable)")
    history.add_argument("--filter", help="filter expression, e.g. 'level >= WARNING'")
    history.add_argument("--min-level", help="lowest level")
    history.add_argument("--since", type=_moment, help=TIME_HELP.format(which="from"))
    history.add_argument("--until", type=_moment, help=TIME_HELP.format(which="until"))
    acked = history.add_mutually_exclusive_group()
    acked.add_argument("--acknowledged", action="store_true", default=None, help="acknowledged events only")
    acked.add_argument("--unacknowledged", action="store_true", help="unacknowledged events only")
    history.add_argument("--oldest-first", action="store_true", help="oldest events first (default: newest)")
    history.add_argument("--limit", type=_positive, default=20, help="events per page (default 20)")
    history.add_argument("--cursor", help="continue after a previous page (its next_cursor)")
    history.set_defaults(handler=_guarded(_history))

    export = subparsers.add_parser(
        "export", parents=[common], help="write stored events as JSON lines or CSV (every page)"
    )
    export.add_argument("--mask", action="append", help="context mask (repeatable), e.g. 'devices.**'")
    export.add_argument("--event", action="append", help="event name (repeatable)")
    export.add_argument("--filter", help="filter expression, e.g. 'level >= WARNING'")
    export.add_argument("--min-level", help="lowest level")
    export.add_argument("--since", type=_moment, help=TIME_HELP.format(which="from"))
    export.add_argument("--until", type=_moment, help=TIME_HELP.format(which="until"))
    export.add_argument("--oldest-first", action="store_true", help="oldest events first (default: newest)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", help="default: jsonl")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.set_defaults(handler=_guarded(_export))

    purge = subparsers.add_parser(
        "purge", parents=[common], help="delete expired events and old cleared alarms now (engineer)"
    )
    purge.set_defaults(handler=_guarded(_purge))

    show = subparsers.add_parser(
        "show", parents=[common], help="one stored event: message, data with labels, instructions"
    )
    show.add_argument("id", type=int, help="the event id")
    show.set_defaults(handler=_guarded(_show))

    ack = subparsers.add_parser("ack", parents=[common], help="acknowledge a stored event")
    ack.add_argument("id", type=int, help="the event id")
    ack.add_argument("text", nargs="+", help="what was done")
    ack.set_defaults(handler=_guarded(_ack))

    watch = subparsers.add_parser("watch", parents=[common], help="print events live until Ctrl-C")
    watch.add_argument("mask", nargs="?", default="**", help="context mask (default: all)")
    watch.add_argument("event", nargs="?", default="*", help="event name (default: every event)")
    watch.add_argument("--filter", help="filter expression, e.g. 'data.value > 80'")
    watch.add_argument("--min-level", help="lowest level")
    watch.add_argument("--count", type=_positive, help="stop after this many events")
    watch.add_argument("--seconds", type=float, help="stop after this many seconds")
    watch.set_defaults(handler=_guarded(_watch))

    tree = subparsers.add_parser("tree", parents=[common], help="show the context tree")
    tree.add_argument("path", nargs="?", default="", help="start here (default: root)")
    tree.add_argument("--depth", type=_positive, help="levels below the path to show")
    tree.set_defaults(handler=_guarded(_tree))

    status = subparsers.add_parser(
        "status", parents=[common], help="the server's metrics at a glance (needs observer on root)"
    )
    status.add_argument(
        "--watch", type=float, metavar="SECONDS", help="refresh every SECONDS, with rates, until Ctrl-C"
    )
    status.set_defaults(handler=_guarded(_status))

    add_user_commands(subparsers, common)
    add_resource_commands(subparsers, common)  # states, transition, jobs
    add_rule_commands(subparsers, common)  # rules list|test
    add_alarm_commands(subparsers, common)  # alarms list|ack|unack|clear


TIME_HELP = "{which}: 2026-05-01T08:00Z, 2026-05-01 (local midnight), 2h (ago), today, yesterday"


def _moment(text: str) -> str:
    """A --since/--until value as the RFC 3339 time the API takes (local time without a zone)."""
    try:
        return parse_time(text).isoformat()
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _guarded(handler: Handler) -> Handler:
    """Turn the errors of ``handler`` into one line on stderr and the documented exit code."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            _check_text(args)
            return handler(args)
        except UsageError as exc:
            return _fail(USAGE, str(exc))
        except BadRequest as exc:
            # Refused before sending (no status): what the command line holds cannot be sent.
            return _fail(USAGE if getattr(exc, "status", None) is None else FAILED, _one_line(exc))
        except ServerUnavailable as exc:
            return _fail(UNREACHABLE, str(exc))
        except AuthenticationFailed as exc:
            return _fail(AUTH, f"authentication failed: {exc}")
        except TooManyAttempts as exc:
            return _fail(AUTH, str(exc))
        except LinkServerError as exc:
            return _fail(FAILED, _one_line(exc))
        except KeyboardInterrupt:
            return OK
        except BrokenPipeError:
            return OK

    return run


def _check_text(args: argparse.Namespace) -> None:
    """Every argument is text: a byte that is not UTF-8 becomes a lone surrogate in argv,
    which no request can carry."""
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, str) and not is_text(item):
                shown = name.replace("_", "-")
                raise UsageError(f"{shown} {item!r} is not text (bytes that are not UTF-8?)")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split("\n"))


def _fail(code: int, message: str) -> int:
    print(f"linkserver: {message}", file=sys.stderr)
    return code


def _client(args: argparse.Namespace) -> Client:
    """The client of a command: the given or ``$LINKSERVER_TOKEN`` token as is; else the
    cached session of the user (``--user``, or the local admin credentials file's),
    logging in only when there is none or the server refuses it."""
    _import_httpx()
    from linkserver.client.sync import Client
    from linkserver.client.transport import TOKEN_ENV, default_url, endpoint, resolve_credentials

    if not getattr(args, "verbose", False):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    try:
        if args.token or os.environ.get(TOKEN_ENV):
            return Client(args.url, token=args.token)
        from linkserver.client.sessions import CachedSessionClient

        where = endpoint(args.url or default_url())
        if args.user:
            return CachedSessionClient(where.base, user=args.user, password=lambda: _password(args))
        local = resolve_credentials(where, None, None, None)
        if local.user is None:
            return Client(where.base)  # no credentials: the server's 401 says what to do
        password = str(local.password)
        return CachedSessionClient(where.base, user=local.user, password=lambda: password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _import_httpx() -> None:
    """httpx without its own command line.

    ``import httpx`` imports ``httpx._main`` (the ``httpx`` command), which loads
    click, rich and pygments wherever they are installed: ~40 ms of a one-shot
    command that never calls it (tools/bench/cli.py). httpx falls back to a stub
    ``httpx.main`` when that import fails; an httpx that cannot is imported whole.
    """
    if "httpx" in sys.modules:
        return
    sys.modules["httpx._main"] = None  # type: ignore[assignment]  # None: its import fails
    try:
        import httpx  # noqa: F401
    except ImportError:
        whole = True
    else:
        whole = False
    finally:
        del sys.modules["httpx._main"]  # a later import of it works
    if whole:
        for name in [name for name in sys.modules if name == "httpx" or name.startswith("httpx.")]:
            del sys.modules[name]
        import httpx  # noqa: F401


def _password(args: argparse.Namespace) -> str:
    password = args.password or os.environ.get(PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError(f"--user needs a password: set ${PASSWORD_ENV} or run in a terminal")
        password = getpass.getpass(f"password for {args.user}: ")
    return password


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


# -- commands -------------------------------------------------------------------


def _fire(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.data is not None:
            if args.values:
                raise UsageError("give the data either as key=value or as --data JSON, not both")
            try:
                data = loads_strict(args.data)
            except ValueError as exc:
                raise UsageError(f"--data is not valid JSON: {exc}") from None
        elif args.values:
            definition = _definition(client.context(args.path), args.event)
            table_format = (definition or {}).get("format") or {}
            record = parse_assignments(args.values, table_format.get("fields") or [])
            several = definition is not None and table_format.get("max_records", 1) != 1
            data = [record] if several else record
        else:
            data = None
        event = client.fire(args.path, args.event, data, level=args.level, durable=args.durable)
    if args.json:
        _print_json(event.marshal())
    else:
        print(f"fired {event.context or 'root'}/{event.name} id {event.id} level {event.level.name}")
    return OK


def _definition(context: dict[str, Any], name: str) -> dict[str, Any] | None:
    for definition in context.get("events") or ():
        if isinstance(definition, dict) and definition.get("name") == name:
            return definition
    return None


def _history(args: argparse.Namespace) -> int:
    acknowledged = True if args.acknowledged else (False if args.unacknowledged else None)
    with _client(args) as client:
        page = client.history(
            mask=args.mask,
            event=args.event,
            filter=args.filter,
            min_level=args.min_level,
            since=args.since,
            until=args.until,
            acknowledged=acknowledged,
            order="oldest" if args.oldest_first else None,
            limit=args.limit,
            cursor=args.cursor,
        )
    if args.json:
        _print_json({"events": [e.marshal() for e in page.events], "next_cursor": page.next_cursor})
        return OK
    rows = [
        [str(e.id), _time(e), e.level.name, e.context or "root", e.name, _acks(e), _message(e), _data(e)]
        for e in page.events
    ]
    print(format_table(["ID", "CREATED", "LEVEL", "CONTEXT", "EVENT", "ACK", "MESSAGE", "DATA"], rows))
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return OK


def _export(args: argparse.Namespace) -> int:
    from linkserver.client.progress import Progress
    from linkserver.history.export import write_csv, write_jsonl

    criteria: dict[str, Any] = {
        "mask": args.mask,
        "event": args.event,
        "filter": args.filter,
        "min_level": args.min_level,
        "since": args.since,
        "until": args.until,
        "order": "oldest" if args.oldest_first else None,
    }
    write = write_csv if args.format == "csv" else write_jsonl
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout  # noqa: SIM115
    try:
        with _client(args) as client, Progress("exporting") as progress:
            if progress.enabled:  # the total only where it is shown: counting costs a query
                progress.update(0, total=client.history(**criteria, limit=1, count=True).count)

            def counted() -> Iterator[Event]:
                for event in client.iter_history(**criteria, limit=1000):
                    progress.advance(note="events")
                    yield event

            written = write(counted(), out)
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    print(f"exported {written} event{'s' if written != 1 else ''}", file=sys.stderr)
    return OK


def _purge(args: argparse.Namespace) -> int:
    from linkserver.client.progress import Progress

    with _client(args) as client, Progress("purging expired events and cleared alarms", ticking=True):
        purged = client.purge()
    if args.json:
        _print_json({"removed": purged.events, "alarms_removed": purged.alarms})
    else:
        events, alarms = purged.events, purged.alarms
        print(
            f"purged {events} expired event{'s' if events != 1 else ''} and "
            f"{alarms} cleared alarm{'s' if alarms != 1 else ''} past alarms.keep_cleared"
        )
    return OK


def _ack(args: argparse.Namespace) -> int:
    with _client(args) as client:
        event = client.acknowledge(args.id, " ".join(args.text))
    if args.json:
        _print_json(event.marshal())
    else:
        count = len(event.acknowledgements)
        print(f"acknowledged event {event.id} ({count} acknowledgement{'s' if count != 1 else ''})")
    return OK


def _watch(args: argparse.Namespace) -> int:
    from linkserver import interrupt

    with _client(args) as client:
        client.token()  # logs in (perhaps asking for a password) while Ctrl-C still interrupts
        with interrupt.live_view() as stop:  # from here Ctrl-C sets stop, never raises in the client
            _watch_until(stop, client, args)
    return OK


def _watch_until(stop: threading.Event, client: Client, args: argparse.Namespace) -> None:
    """Print events until ``stop`` is set, the count is reached, the time is up or the stream ends."""
    import time

    from linkserver import interrupt
    from linkserver.core.events import Event

    def on_gap(gap: Gap) -> None:
        if args.json:
            _print_json(
                {
                    "gap": {
                        "last_delivered_id": gap.last_delivered_id,
                        "last_dropped_id": gap.last_dropped_id,
                        "dropped": gap.dropped,
                    }
                }
            )
        else:
            print(
                f"-- {gap.dropped} events dropped (ids after {gap.last_delivered_id} up to "
                f"{gap.last_dropped_id}); see 'linkserver history'",
                file=sys.stderr,
                flush=True,
            )

    deadline = time.monotonic() + args.seconds if args.seconds is not None else None
    seen = 0
    subscription = client.subscribe(
        args.mask, args.event, filter=args.filter, min_level=args.min_level, on_gap=on_gap
    )
    if not args.json:
        print(f"watching {args.mask} {args.event} at {client.url}; Ctrl-C stops", file=sys.stderr)
    with subscription:
        while not stop.is_set() and (args.count is None or seen < args.count):
            timeout = interrupt.TICK if deadline is None else min(interrupt.TICK, deadline - time.monotonic())
            if timeout <= 0:
                break
            event = subscription.get(timeout=timeout)
            if not isinstance(event, Event):  # None: timed out or ended (gaps go to on_gap)
                if subscription.ended:
                    break
                continue
            seen += 1
            if args.json:
                _print_json(event.marshal())
            else:
                print(_event_line(event), flush=True)


def _tree(args: argparse.Namespace) -> int:
    with _client(args) as client:
        tree = client.tree(args.path, depth=args.depth)
    if args.json:
        _print_json(tree)
        return OK
    rows: list[list[str]] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        name = node.get("name") or node.get("path") or "root"
        rows.append(["  " * depth + name, node.get("path") or "root", node.get("description") or ""])
        for child in node.get("children") or ():
            if isinstance(child, dict):
                walk(child, depth + 1)

    walk(tree, 0)
    print(format_table(["CONTEXT", "PATH", "DESCRIPTION"], rows))
    return OK


def _status(args: argparse.Namespace) -> int:
    import time

    from linkserver import interrupt
    from linkserver.client import status

    if args.watch is not None and args.watch <= 0:
        raise UsageError(f"--watch needs a positive number of seconds, got {args.watch}")
    with _client(args) as client:

        def scrape() -> status.Samples:
            text = client.metrics()  # on the client's connection: no second TLS set-up
            try:
                return status.parse(text)
            except ValueError as exc:
                raise LinkServerError(f"{client.url}/metrics: {exc}") from None

        samples, taken = scrape(), time.monotonic()
        if args.json:
            _print_json(status.as_json(samples))
            return OK
        print("\n".join(status.summary(client.url, samples)), flush=True)
        if args.watch is None:
            return OK
        with interrupt.live_view() as stop:  # Ctrl-C ends the wait or lets the scrape finish
            while not interrupt.pause(stop, args.watch):
                before, then = samples, taken
                samples, taken = scrape(), time.monotonic()
                if sys.stdout.isatty():
                    print("\033[H\033[J", end="")
                else:
                    print()
                print("\n".join(status.summary(client.url, samples, before, taken - then)), flush=True)
    return OK


# -- output -----------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned by padding; the last column is not padded."""
    if not rows:
        return "  ".join(headers) + "\n(none)"
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)


def _time(event: Event) -> str:
    return event.created.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _acks(event: Event) -> str:
    return str(len(event.acknowledgements)) if event.acknowledgements else "-"


def _data(event: Event, limit: int = 80) -> str:
    """The records, coded values shown as their labels."""
    text = "; ".join(", ".join(f"{k}={v}" for k, v in record.items()) for record in event.shown_data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(event: Event, limit: int = 80) -> str:
    text = event.message or "-"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _event_line(event: Event) -> str:
    time = event.created.astimezone().strftime("%H:%M:%S.%f")[:-3]
    context = event.context or "root"
    message = f"{event.message}  " if event.message else ""
    head = f"{time}  {event.level.name:<7}  {context:<20}  {event.name:<16}"
    return f"{head}  {message}{_data(event, 200)}".rstrip()


def _show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        event = client.event(args.id)
        definition = _definition(client.context(event.context or "root"), event.name)
    if args.json:
        _print_json({"event": event.marshal(), "instructions": event.instructions, "alarms": event.alarms})
        return OK
    print(f"event {event.id}  {event.context or 'root'}/{event.name}  {event.level.name}")
    if event.message:
        print(f"  {event.message}")
    facts = [
        ("created", _time(event)),
        ("author", event.author or "-"),
        ("description", (definition or {}).get("description") or "-"),
        ("acknowledgements", str(len(event.acknowledgements))),
        *event_alarm_facts(event.alarms),
    ]
    for key, value in facts:
        print(f"  {key:<17}{value}")
    print("data")
    shown = event.shown_data
    for index, record in enumerate(event.data):
        for key, value in record.items():
            label = shown[index].get(key) if index < len(shown) else None
            text = f"{label} ({value})" if label is not None and label != value else str(value)
            print(f"  {'[' + str(index) + '] ' if len(event.data) > 1 else ''}{key} = {text}")
    if event.instructions:
        print("instructions")
        for line in event.instructions.splitlines():
            print(f"  {line}")
    for ack in event.acknowledgements:
        print(f"acknowledged {ack.time.astimezone():%Y-%m-%d %H:%M:%S} by {ack.user}: {ack.text}")
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    """The client commands alone: ``python -m linkserver.client.cli fire ...``."""
    parser = argparse.ArgumentParser(prog="linkserver", description="LinkServer client commands.")
    add_client_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
