"""The shell's machinery: sessions, paths, argument parsing and the command table.

Nothing here touches a terminal: a :class:`Shell` runs one line of text
against a :class:`~linkserver.client.Client` and writes text to a
:class:`Console` (anything with ``write``, ``ask``, ``colour`` and
``width``), so every command can be tested with strings in and text out.
A command that fails raises: :class:`ShellError` for bad input, the
server's own error class for what the server refused; :func:`describe_error`
turns either into the one line the shell shows. The commands themselves
register with :func:`command` in :mod:`linkserver.shell.commands`.

Paths are relative to the current context: ``sim1``, ``devices.sim1``,
``..``, ``../sim2``; a leading ``/`` (or the word ``root``) starts at the
root. Masks follow the same rule and may use ``*`` and ``**``.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from linkserver.client import values
from linkserver.client.errors import AuthenticationFailed, ServerUnavailable
from linkserver.client.values import UsageError, parse_value
from linkserver.core.durations import parse_duration
from linkserver.core.errors import EventNotDefined, FilterError, LinkServerError, PermissionDenied
from linkserver.core.events import Event
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level
from linkserver.shell import render

_NAME = re.compile(r"[A-Za-z0-9_]+\Z")


class ShellError(LinkServerError, ValueError):
    """The command line is wrong: unknown command, bad path, value, option or filter."""


class Console(Protocol):
    """Where commands write. ``ask`` (and ``ask_secret``, without echo) return None when
    nobody can answer (scripts).

    ``ask(question, meanwhile)`` runs ``meanwhile(stop)`` in another thread
    for as long as the question is pending (until ``stop`` is set), and the
    lines it writes appear above the question: how ``watch`` keeps printing
    events while an acknowledgement is asked for. A console that cannot do
    that may ignore ``meanwhile``.
    """

    @property
    def colour(self) -> bool: ...

    @property
    def width(self) -> int | None: ...

    def write(self, text: str = "") -> None: ...

    def ask(
        self, question: str, meanwhile: Callable[[threading.Event], None] | None = None
    ) -> str | None: ...

    def ask_secret(self, question: str) -> str | None: ...


def describe_error(exc: BaseException) -> str:
    """One line for an error a command raised."""
    if isinstance(exc, ServerUnavailable):
        return f"{exc} (the shell reconnects on the next command)"
    if isinstance(exc, AuthenticationFailed):
        return f"authentication failed: {exc}"
    if isinstance(exc, FilterError):
        where = f"column {exc.column}: " if exc.column else ""
        return f"bad filter: {where}{exc.message}"
    if isinstance(exc, PermissionDenied):
        return f"permission denied: {exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


# -- paths, times, values --------------------------------------------------------------


def resolve(cwd: str, text: str, *, mask: bool = False) -> str:
    """The absolute path (or mask) ``text`` names when the current context is ``cwd``."""
    text = text.strip()
    if text in ("/", "root"):
        return ""
    parts = [] if text.startswith("/") else (cwd.split(".") if cwd else [])
    for step in text.split("/"):
        if step in ("", "."):
            continue
        if step == "..":
            if parts:
                parts.pop()
            continue
        for name in step.split("."):
            if not (_NAME.match(name) or (mask and name in ("*", "**"))):
                what = "context mask" if mask else "context path"
                raise ShellError(
                    f"{text!r} is not a {what}: {name!r} is not a name"
                    f"{' or * or **' if mask else ''} (names are letters, digits and _; "
                    "'..' is the parent, a leading '/' the root)"
                )
            parts.append(name)
    return ".".join(parts)


def wire(path: str) -> str:
    """A path or mask as the network API takes it (the root as ``root``)."""
    return path or "root"


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """See :func:`linkserver.client.values.parse_time`; a bad time is a ShellError."""
    try:
        return values.parse_time(text, now)
    except UsageError as exc:
        raise ShellError(str(exc)) from None


def parse_record(items: Sequence[str], fields: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``field=value`` words as one record typed by ``fields``; every bad one named in one error."""
    by_name = {str(f.get("name")): f for f in fields}
    record: dict[str, Any] = {}
    problems = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not _NAME.match(key):
            problems.append(f"{item!r}: expected field=value")
        elif key in record:
            problems.append(f"{key}: given twice")
        elif key not in by_name:
            problems.append(f"{key}: unknown field (known fields: {', '.join(by_name) or 'none'})")
        else:
            try:
                record[key] = parse_value(text, by_name[key], key)
            except UsageError as exc:
                problems.append(str(exc))
    if problems:
        raise ShellError("bad values: " + "; ".join(problems))
    return record


def filter_text(text: str | None) -> str | None:
    """The filter expression, checked here first so a mistake shows its column right away."""
    if text is not None:
        parse_filter(text)
    return text


# -- context lookups ----------------------------------------------------------------------


class ContextCache:
    """``GET /contexts/{path}`` answers kept ``ttl`` seconds (misses 1 s), so Tab stays fast."""

    def __init__(self, client: Any, ttl: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.ttl, self.clock = client, ttl, clock
        self._entries: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> dict[str, Any]:
        """The context at ``path``; raises the server's error (ContextNotFound...)."""
        now = self.clock()
        with self._lock:
            hit = self._entries.get(path)
        if hit is None or hit[0] <= now:
            try:
                value: Any = self.client.context(wire(path))
                expiry = now + self.ttl
            except (ServerUnavailable, AuthenticationFailed):
                raise
            except LinkServerError as exc:
                value, expiry = exc, now + min(self.ttl, 1.0)
            hit = (expiry, value)
            with self._lock:
                self._entries[path] = hit
        if isinstance(hit[1], BaseException):
            raise hit[1]
        return hit[1]

    def find(self, path: str) -> dict[str, Any] | None:
        """Like :meth:`get`, but None on any error (for completion and decorations)."""
        try:
            return self.get(path)
        except Exception:  # noqa: BLE001 - a lookup that fails just offers nothing
            return None

    def definition(self, path: str, name: str) -> dict[str, Any] | None:
        for definition in (self.find(path) or {}).get("events") or ():
            if definition.get("name") == name:
                return definition
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# -- the command table ------------------------------------------------------------------


@attrs.frozen
class Arg:
    """A positional (``name``) or an option (``--name``); ``kind`` drives parsing and completion."""

    name: str
    kind: str  # path mask event assign id text command level filter count time json flag
    help: str
    nargs: str | None = None


@attrs.frozen
class Command:
    name: str
    usage: str
    summary: str
    args: tuple[Arg, ...]
    run: Callable[[Shell, argparse.Namespace], Any]
    parser: argparse.ArgumentParser
    example: str = ""

    def option(self, flag: str) -> Arg | None:
        return next((a for a in self.args if a.name == flag), None)

    def positionals(self) -> list[Arg]:
        return [a for a in self.args if not a.name.startswith("-")]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ShellError(f"{self.prog}: {message}; usage: {COMMANDS[self.prog].usage}")


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _event_id(text: str) -> int:
    if not text.strip().lstrip("#").isdigit():
        raise argparse.ArgumentTypeError(f"expected an event id (a number), got {text!r}")
    return int(text.strip().lstrip("#"))


def _level(text: str) -> Level:
    try:
        return Level.parse(text)
    except LinkServerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_TYPES: dict[str, Callable[[str], Any]] = {"count": _count, "id": _event_id, "level": _level}
COMMANDS: dict[str, Command] = {}
ALIASES = {"quit": "exit", "ll": "ls", "?": "help", "whoami": "me"}


def command(name: str, usage: str, summary: str, *args: Arg, example: str = "") -> Callable[..., Any]:
    """Register the decorated ``fn(shell, args)``; it returns False to end the shell."""

    def register(fn: Callable[[Shell, argparse.Namespace], Any]) -> Callable[..., Any]:
        parser = _Parser(prog=name, add_help=False)
        for arg in args:
            if arg.name.startswith("-"):
                if arg.kind == "flag":
                    parser.add_argument(arg.name, action="store_true")
                else:
                    parser.add_argument(arg.name, type=_TYPES.get(arg.kind, str))
            else:
                parser.add_argument(arg.name, nargs=arg.nargs, type=_TYPES.get(arg.kind, str))
        COMMANDS[name] = Command(name, usage, summary, args, fn, parser, example)
        return fn

    return register


def split_commands(line: str) -> Iterator[list[str]]:
    """The words of each ``;``-separated command of ``line`` (quotes as in a POSIX shell)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        for token in lexer:
            if token and set(token) == {";"}:
                if words:
                    yield words
                words = []
            else:
                words.append(token)
    except ValueError as exc:
        raise ShellError(f"cannot read the line: {exc} (close the quote)") from None
    if words:
        yield words


def find_command(name: str) -> Command:
    found = COMMANDS.get(ALIASES.get(name, name))
    if found is None:
        close = difflib.get_close_matches(name, [*COMMANDS, *ALIASES], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ShellError(f"unknown command {name!r}{hint}; 'help' lists the commands")
    return found


# -- the shell --------------------------------------------------------------------------------


class Shell:
    """The state of one session: the client, the current context, caches, the last query."""

    def __init__(self, client: Any, console: Console, *, cache_ttl: float = 3.0) -> None:
        self.client = client
        self.console = console
        self.cwd = ""
        self.contexts = ContextCache(client, cache_ttl)
        self.next_query: dict[str, Any] | None = None  # 'more' continues this history query
        self.recent_ids: list[int] = []  # ids shown lately, offered by completion
        self.online = True  # False after the server could not be reached, until a command succeeds
        self._stored_ack: dict[tuple[str, str], bool] = {}  # requires_ack of gone definitions

    def execute(self, line: str) -> bool:
        """Run every command of ``line``; False when one of them ends the shell. Raises on error."""
        for words in split_commands(line):
            cmd = find_command(words[0])
            if "-h" in words[1:] or "--help" in words[1:]:
                self.console.write(help_text(cmd))
                continue
            args = cmd.parser.parse_intermixed_args(words[1:])
            if cmd.run(self, args) is False:
                return False
        return True

    def write(self, text: str = "") -> None:
        self.console.write(text)

    @property
    def colour(self) -> bool:
        return bool(self.console.colour)

    def path(self, text: str | None) -> str:
        return self.cwd if text is None else resolve(self.cwd, text)

    def mask(self, text: str | None) -> str:
        if text is None:
            return f"{self.cwd}.**" if self.cwd else "**"
        return resolve(self.cwd, text, mask=True)

    def event_ref(self, text: str) -> tuple[str, str]:
        """``EVENT`` in the current context, or ``PATH/EVENT``."""
        path, _, name = text.rpartition("/")
        if not _NAME.match(name):
            raise ShellError(f"{name!r} is not an event name (letters, digits and _)")
        return (self.path(path) if path else self.cwd), name

    def definition(self, path: str, name: str) -> dict[str, Any]:
        context = self.contexts.get(path)
        for definition in context.get("events") or ():
            if definition.get("name") == name:
                return definition
        raise EventNotDefined(path, name, [d.get("name") for d in context.get("events") or ()])

    def requires_ack(self, event: Event) -> bool:
        """Whether ``event`` needs an acknowledgement: as its definition says, or, when its
        context (or definition) is gone, as history stored it with the event."""
        definition = self.contexts.definition(event.context, event.name)
        if definition is not None:
            return bool(definition.get("requires_acknowledgement"))
        key = (event.context, event.name)
        if key not in self._stored_ack:
            try:
                page = self.client.history(
                    mask=wire(event.context),
                    event=event.name,
                    filter=f"id == {event.id}",
                    requires_acknowledgement=True,
                    limit=1,
                )
            except LinkServerError:  # a decoration: unknown is shown as not required
                return False
            self._stored_ack[key] = bool(page.events)
        return self._stored_ack[key]

    def remember(self, events: Sequence[Event]) -> None:
        self.recent_ids = list(dict.fromkeys([e.id for e in events] + self.recent_ids))[:50]

    def prompt_ack(self, event: Event, meanwhile: Callable[[threading.Event], None] | None = None) -> None:
        """Ask for an acknowledgement of ``event`` right now; an empty answer skips it.

        ``meanwhile`` keeps running while the question is pending (see :class:`Console`).
        """
        label = f"{render.context_text(event.context)}/{event.name} #{event.id}"
        said = f" ({render.shorten(event.message, 120)})" if event.message else ""
        text = self.console.ask(f"acknowledge {label}{said} (text, Enter skips): ", meanwhile)
        if text is None:
            return
        if not text.strip():
            self.write(f"skipped {label}; 'ack {event.id}' acknowledges it later")
            return
        try:
            done = self.client.acknowledge(event.id, text.strip())
            self.write(f"acknowledged {label} ({len(done.acknowledgements)} acknowledgement(s))")
        except LinkServerError as exc:
            self.write(render.error_line(describe_error(exc), self.colour))


def help_text(cmd: Command | None = None) -> str:
    """``help``: every command and its summary; ``help COMMAND``: usage, options, example."""
    if cmd is None:
        rows = [[c.name, c.summary] for c in COMMANDS.values()]
        aliases = ", ".join(f"{a} = {t}" for a, t in ALIASES.items())
        return (
            render.table(["COMMAND", "WHAT IT DOES"], rows)
            + f"\n\naliases: {aliases}. Paths are relative to the current context ('..' is the parent, "
            "'/' the root); 'help COMMAND' shows a command's options. Tab completes."
        )
    lines = [f"usage: {cmd.usage}", "", cmd.summary]
    if cmd.args:
        lines += [""] + [f"  {a.name:<12}{a.help}" for a in cmd.args]
    if cmd.example:
        lines += ["", "example:"] + [f"  {line}" for line in cmd.example.splitlines()]
    return "\n".join(lines)


def _seconds(text: str) -> float:
    try:
        return float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else parse_duration(text).total_seconds()
    except LinkServerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_TYPES["seconds"] = _seconds


def _ctx(path: str) -> str:
    return render.context_text(path)
