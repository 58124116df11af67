"""The shell's commands, one small function each, registered with :func:`command`.

Importing this module fills the command table; the machinery (the
:class:`Shell` session, paths, parsing) lives in :mod:`linkserver.shell.session`.
"""

from __future__ import annotations

import argparse
import collections
import json
import threading
import time
from typing import Any

import attrs

from linkserver import interrupt
from linkserver.server.passwords import check_new_password
from linkserver.shell import render
from linkserver.shell.session import (  # noqa: F401 - re-exported for the app and completion
    _NAME,
    _TYPES,
    ALIASES,
    COMMANDS,
    Arg,
    Command,
    Console,
    ContextCache,
    Shell,
    ShellError,
    _count,
    _ctx,
    _event_id,
    _level,
    _Parser,
    _seconds,
    command,
    describe_error,
    filter_text,
    find_command,
    help_text,
    parse_record,
    parse_time,
    resolve,
    split_commands,
    wire,
)

# -- navigation and definitions ------------------------------------------------------------


@command(
    "help", "help [COMMAND]", "list the commands, or explain one", Arg("command", "command", "a command", "?")
)
def _help(shell: Shell, a: argparse.Namespace) -> None:
    shell.write(help_text(find_command(a.command) if a.command else None))


@command("exit", "exit", "leave the shell (Ctrl-D does too)")
def _exit(shell: Shell, a: argparse.Namespace) -> bool:
    return False


@command("pwd", "pwd", "print the current context")
def _pwd(shell: Shell, a: argparse.Namespace) -> None:
    shell.write(_ctx(shell.cwd))


@command(
    "cd",
    "cd [PATH]",
    "go to a context (relative, /absolute, .. for the parent; no PATH: the root)",
    Arg("path", "path", "the context to go to", "?"),
    example="cd devices.sim1\ncd ../sim2\ncd /alerts",
)
def _cd(shell: Shell, a: argparse.Namespace) -> None:
    path = shell.path(a.path) if a.path else ""
    shell.contexts.get(path)
    shell.cwd = path


@command("ls", "ls [PATH]", "list the child contexts", Arg("path", "path", "a context (default: here)", "?"))
def _ls(shell: Shell, a: argparse.Namespace) -> None:
    path = shell.path(a.path)
    node = shell.client.tree(wire(path), depth=1)
    rows = [[c.get("name", "?"), c.get("description") or ""] for c in node.get("children") or ()]
    shell.write(
        render.table(["CONTEXT", "DESCRIPTION"], rows, colour=shell.colour, width=shell.console.width)
    )
    count = len((shell.contexts.find(path) or {}).get("events") or ())
    shell.write(f"{len(rows)} child context(s); {count} event(s) defined in {_ctx(path)} (see 'events')")


@command(
    "tree",
    "tree [PATH] [--depth N]",
    "the context tree below a context",
    Arg("path", "path", "where to start (default: here)", "?"),
    Arg("--depth", "count", "levels to show below PATH"),
    example="tree / --depth 1",
)
def _tree(shell: Shell, a: argparse.Namespace) -> None:
    node = shell.client.tree(wire(shell.path(a.path)), depth=a.depth)
    shell.write(render.tree_text(node, colour=shell.colour))


@command(
    "events", "events [PATH]", "the event definitions of a context", Arg("path", "path", "a context", "?")
)
def _events(shell: Shell, a: argparse.Namespace) -> None:
    context = shell.contexts.get(shell.path(a.path))
    shell.write(
        render.definitions_table(context.get("events") or (), colour=shell.colour, width=shell.console.width)
    )


@command(
    "show",
    "show EVENT",
    "one event definition: description, help, permissions and its fields",
    Arg("event", "event", "EVENT of the current context, or PATH/EVENT"),
    example="show measurement\nshow /alerts.pump/alert",
)
def _show(shell: Shell, a: argparse.Namespace) -> None:
    path, name = shell.event_ref(a.event)
    definition = shell.definition(path, name)
    shell.write(render.definition_detail(path, definition, colour=shell.colour, width=shell.console.width))


# -- firing and history ----------------------------------------------------------------------


@command(
    "fire",
    "fire EVENT [FIELD=VALUE ...] [--level L] [--durable] [--data JSON]",
    "fire an event here; values are typed by the event's fields",
    Arg("event", "event", "EVENT of the current context, or PATH/EVENT"),
    Arg("values", "assign", "field=value (quote values with spaces)", "*"),
    Arg("--level", "level", "override the definition's level"),
    Arg("--durable", "flag", "answer only once the event is stored"),
    Arg("--data", "json", "the whole data table as JSON, instead of field=value"),
    example='fire error code=E42 message="pump stalled" --level FATAL\n'
    'fire /alerts.pump/alert message="low pressure"',
)
def _fire(shell: Shell, a: argparse.Namespace) -> None:
    path, name = shell.event_ref(a.event)
    fmt = shell.definition(path, name).get("format") or {}
    data: Any = None
    if a.data is not None:
        if a.values:
            raise ShellError("give the data as field=value or as --data JSON, not both")
        try:
            data = json.loads(a.data)
        except ValueError as exc:
            raise ShellError(f"--data is not valid JSON: {exc}") from None
    elif a.values:
        record = parse_record(a.values, fmt.get("fields") or ())
        data = record if fmt.get("max_records", 1) == 1 else [record]
    event = shell.client.fire(wire(path), name, data, level=a.level, durable=a.durable)
    shell.remember([event])
    level = render.paint(event.level.name, render.level_style(event.level), shell.colour)
    shell.write(f"fired {_ctx(event.context)}/{event.name} #{event.id} {level}")


@command(
    "history",
    "history [MASK] [EVENT] [--filter EXPR] [--since T] [--until T] [--level L] [--unacked] [--limit N]",
    "stored events here and below (or matching MASK), newest first, a page at a time",
    Arg("mask", "mask", "context mask relative to here (default: here and below); /** is everything", "?"),
    Arg("event", "event", "event name (default: all)", "?"),
    Arg("--filter", "filter", "filter expression, e.g. \"level >= WARNING and data.code == 'E42'\""),
    Arg("--since", "time", "from: 2026-05-01T08:00, 2026-05-01, 2h (ago), today"),
    Arg("--until", "time", "before this time"),
    Arg("--level", "level", "lowest level"),
    Arg("--unacked", "flag", "only events waiting for an acknowledgement"),
    Arg("--limit", "count", "events per page (default 20)"),
    Arg("--oldest", "flag", "oldest first"),
    Arg("--all", "flag", "every page, not only the first"),
    example="history --unacked\nhistory /devices.* error --since 1h\nhistory --filter 'data.value > 80'",
)
def _history(shell: Shell, a: argparse.Namespace) -> None:
    query: dict[str, Any] = {
        "mask": wire(shell.mask(a.mask)),
        "event": None if a.event in (None, "*") else a.event,
        "filter": filter_text(a.filter),
        "min_level": a.level,
        "since": parse_time(a.since) if a.since else None,
        "until": parse_time(a.until) if a.until else None,
        "limit": a.limit or 20,
        "order": "oldest" if a.oldest else None,
    }
    if a.unacked:
        query.update(acknowledged=False, requires_acknowledgement=True)
    shell.next_query = query
    _pages(shell, every=a.all)


def _pages(shell: Shell, every: bool = False) -> None:
    while shell.next_query is not None:
        query = shell.next_query
        page = shell.client.history(**query)
        shell.next_query = {**query, "cursor": page.next_cursor} if page.next_cursor else None
        shell.remember(page.events)
        table = render.history_table(
            page.events, shell.requires_ack, colour=shell.colour, width=shell.console.width
        )
        shell.write("(no events)" if not page.events else table)
        if not every:
            break
    if shell.next_query is not None:
        shell.write("more events: 'more' shows the next page")


@command("more", "more", "the next page of the last history query")
def _more(shell: Shell, a: argparse.Namespace) -> None:
    if shell.next_query is None:
        raise ShellError("no more events: 'history' starts a query")
    _pages(shell)


@command(
    "event",
    "event ID",
    "one stored event in full, with its data and acknowledgements",
    Arg("id", "id", "event id"),
)
def _event(shell: Shell, a: argparse.Namespace) -> None:
    event = shell.client.event(a.id)
    shell.remember([event])
    definition = shell.contexts.definition(event.context, event.name)
    if definition is None and shell.requires_ack(event):  # its context is gone; history knows
        definition = {"requires_acknowledgement": True}
    shell.write(render.event_detail(event, definition, colour=shell.colour, width=shell.console.width))


@command(
    "ack",
    "ack ID [TEXT]",
    "acknowledge a stored event (asks for the text when it is missing)",
    Arg("id", "id", "event id"),
    Arg("text", "text", "what was done", "*"),
    example="ack 7340032 replaced the fuse",
)
def _ack(shell: Shell, a: argparse.Namespace) -> None:
    text = " ".join(a.text).strip()
    if not text:
        answer = shell.console.ask(f"acknowledgement text for #{a.id}: ")
        if answer is None:
            raise ShellError(f"ack needs the text: ack {a.id} TEXT")
        text = answer.strip()
        if not text:
            shell.write("not acknowledged (no text given)")
            return
    event = shell.client.acknowledge(a.id, text)
    count = len(event.acknowledgements)
    shell.write(f"acknowledged #{event.id} {_ctx(event.context)}/{event.name} ({count} acknowledgement(s))")


@command("acks", "acks ID", "the acknowledgements of a stored event", Arg("id", "id", "event id"))
def _acks(shell: Shell, a: argparse.Namespace) -> None:
    event = shell.client.event(a.id)
    shell.write(f"#{event.id} {_ctx(event.context)}/{event.name}")
    shell.write(render.acks_table(event, colour=shell.colour, width=shell.console.width))


# -- live ---------------------------------------------------------------------------------------


@command(
    "watch",
    "watch [MASK] [EVENT] [--filter EXPR] [--level L] [--count N] [--seconds S] [--no-ack]",
    "print events as they fire until Ctrl-C; alerts that need an acknowledgement ask for it",
    Arg("mask", "mask", "context mask relative to here (default: here and below)", "?"),
    Arg("event", "event", "event name (default: every non-hidden event)", "?"),
    Arg("--filter", "filter", "filter expression"),
    Arg("--level", "level", "lowest level"),
    Arg("--count", "count", "stop after N events"),
    Arg("--seconds", "seconds", "stop after S seconds (or a duration: 5m)"),
    Arg("--no-ack", "flag", "never ask for acknowledgements"),
    example="watch /** --level WARNING\nwatch /devices.* measurement --filter 'data.value > 80'",
)
def _watch(shell: Shell, a: argparse.Namespace) -> None:
    mask, name = wire(shell.mask(a.mask)), a.event or "*"
    gaps: list[Any] = []
    deadline = None if a.seconds is None else time.monotonic() + a.seconds
    seen = 0
    ended = False
    to_ack: collections.deque[Any] = collections.deque()  # alerts waiting for their question
    with interrupt.live_view() as stop:  # Ctrl-C sets stop, never raises in the client's code
        subscription = shell.client.subscribe(
            mask, name, filter=filter_text(a.filter), min_level=a.level, on_gap=gaps.append
        )
        shell.write(f"watching {mask} {name}; Ctrl-C returns to the prompt")

        def done() -> bool:
            return (
                stop.is_set()
                or ended
                or (a.count is not None and seen >= a.count)
                or (deadline is not None and time.monotonic() >= deadline)
            )

        def receive(longest: float) -> None:
            """Wait up to ``longest`` seconds for one event and print it (and any gap before it)."""
            nonlocal seen, ended
            left = None if deadline is None else deadline - time.monotonic()
            item = subscription.get(timeout=longest if left is None else max(0.0, min(longest, left)))
            for gap in gaps:
                after = gap.last_delivered_id
                shell.write(f"-- {gap.dropped} event(s) dropped after #{after}; 'history' has them")
            gaps.clear()
            if item is None:
                ended = subscription.ended
                return
            seen += 1
            shell.write(render.event_line(item, colour=shell.colour, width=shell.console.width))
            if not a.no_ack and not item.acknowledged and shell.requires_ack(item):
                to_ack.append(item)

        def keep_receiving(question_answered: threading.Event) -> None:
            # While an acknowledgement is asked for, the stream goes on above the question.
            while not question_answered.is_set() and not done():
                receive(0.1)

        with subscription:
            while not stop.is_set() and (to_ack or not done()):
                if to_ack:
                    try:
                        shell.prompt_ack(to_ack.popleft(), meanwhile=keep_receiving)
                    except KeyboardInterrupt:  # Ctrl-C at the question: prompt-toolkit reads it as a key
                        stop.set()
                else:
                    receive(interrupt.TICK)
        if stop.is_set():
            shell.write()  # past the ^C the terminal echoed
        shell.write(f"stopped watching ({seen} event(s))")


@command("devices", "devices", "device contexts with their connection state and lifecycle state")
def _devices(shell: Shell, a: argparse.Namespace) -> None:
    node = shell.client.tree("devices", depth=1)
    rows = {c["name"]: {"name": c["name"]} for c in node.get("children") or ()}
    if rows:  # the state from the device state machine; the last stateChanged for others
        for resource in shell.client.resources("devices.*"):
            row = rows.get(str(resource["path"]).rpartition(".")[2])
            if row is not None:
                row["state"] = resource["state"]
        page = shell.client.history(
            mask="devices.*", event=["connected", "disconnected", "stateChanged"], limit=5000
        )
        for e in page.events:  # newest first: the first seen per device is its current state
            row = rows.get(e.context.rpartition(".")[2])
            if row is None:
                continue
            if e.name == "stateChanged":
                row.setdefault("state", e.record.get("new"))
            elif "connection" not in row:
                row.update(connection=e.name, since=e.created, detail=render.data_summary(e.data, 80))
    shell.write(render.devices_table(list(rows.values()), colour=shell.colour, width=shell.console.width))
    connected = sum(1 for r in rows.values() if r.get("connection") == "connected")
    shell.write(f"{len(rows)} device(s), {connected} connected")


@command("me", "me", "who you are logged in as, and your grants")
def _me(shell: Shell, a: argparse.Namespace) -> None:
    me = shell.client.me()
    grants = ", ".join(f"{mask} {level}" for mask, level in (me.get("grants") or {}).items())
    shell.write(f"{me.get('user')} at {shell.client.url}; grants: {grants or 'none'}")


@command(
    "passwd",
    "passwd",
    "change your own password (asks for the current one, then the new one twice)",
)
def _passwd(shell: Shell, a: argparse.Namespace) -> None:
    me = shell.client.me()
    if me.get("component"):
        raise ShellError("passwd changes a user's password; this shell is logged in with an API token")
    name = str(me.get("user"))
    ask = shell.console.ask_secret
    current = ask(f"current password of {name}: ")
    if current is None:
        raise ShellError("passwd needs a terminal to ask for the passwords")
    new = ask("new password: ") or ""
    if not new:
        shell.write("password not changed (none given)")
        return
    if ask("new password again: ") != new:
        raise ShellError("the new passwords differ; password not changed")
    problem = check_new_password(new)
    if problem:
        raise ShellError(f"{problem}; password not changed")
    shell.client.set_password(name, new, current_password=current)
    credentials = shell.client.credentials
    if credentials.user == name:  # later logins (after a restart of the server) use the new one
        shell.client.credentials = attrs.evolve(credentials, password=new)
    shell.write(f"password of {name} changed; your other sessions ended")


from linkserver.shell import alarm_commands as _alarm_commands  # noqa: E402, F401 - registers alarms, alarm
from linkserver.shell import context_commands as _context_commands  # noqa: E402, F401 - registers add, remove
from linkserver.shell import resource_commands  # noqa: E402, F401 - registers state and jobs
from linkserver.shell import rule_commands as _rule_commands  # noqa: E402, F401 - registers rules
