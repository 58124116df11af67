"""The ``linkserver`` command line.

Start-up is most of what a one-shot command costs (``linkserver fire`` from a
script or a cron job), so this module imports little: each command imports
what it needs when it runs (tools/bench/cli.py measures it;
tests/test_cli_imports.py keeps the client commands free of server modules).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkserver import __version__
from linkserver.client.cli import add_client_commands
from linkserver.core.errors import ConfigError, LinkServerError
from linkserver.runtime import DATA_DIR_ENV, LISTEN_ENV
from linkserver.shell.main import add_shell_command

CONFIG_HELP = (
    "server configuration (default: $LINKSERVER_CONFIG, else config/linkserver.yaml here, "
    "else the shipped one)"
)
DATA_DIR_HELP = f"data directory (default: ${DATA_DIR_ENV} or the configuration's)"

if TYPE_CHECKING:
    from linkserver.core.events import Event

LOG_FORMAT_ENV = "LINKSERVER_LOG_FORMAT"
LEVEL_COLOURS = {  # by level name
    "NONE": "\033[2m",
    "NOTICE": "\033[36m",
    "INFO": "\033[32m",
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",
    "FATAL": "\033[1;31m",
}


def format_event(event: Event, colour: bool = False) -> str:
    """One line per event: time, level, context, name, message, data (labels shown)."""
    level = f"{event.level.name:<7}"
    if colour:
        level = f"{LEVEL_COLOURS[event.level.name]}{level}\033[0m"
    data = ", ".join(f"{k}={v}" for record in event.shown_data for k, v in record.items())
    time = event.created.strftime("%H:%M:%S.%f")[:-3]
    message = f" {event.message} |" if event.message else ""
    return f"{time} {level} {event.context or 'root'} {event.name}{message} {data}".rstrip()


def _run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from linkserver.loading.check import load_all
    from linkserver.server.app import LinkServer

    config, catalog = load_all(_config_path(args), data_dir=_data_dir(args))
    server = LinkServer(config, catalog)
    colour = sys.stdout.isatty()

    def show(event: Event) -> None:
        print(format_event(event, colour), flush=True)

    server.listen(
        args.mask, args.event, show, filter=args.filter, min_level=args.min_level, delivery="queued"
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    server.start()
    print(
        f"LinkServer {__version__} running in-process; history at {server.config.database_url}; "
        "Ctrl-C stops it",
        file=sys.stderr,
    )
    try:
        stopping.wait(args.seconds)
    finally:
        server.stop("interrupted" if stopping.is_set() else "run time over")
    return 0


def _check(args: argparse.Namespace) -> int:
    from linkserver.client.progress import Progress
    from linkserver.loading.check import check_files

    with Progress("checking") as progress:
        problems = check_files(
            [Path(p) for p in args.paths], on_file=lambda path: progress.advance(note=f"files, at {path}")
        )
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found", file=sys.stderr)
        return 1
    print("all files are valid", file=sys.stderr)
    return 0


def _db(args: argparse.Namespace) -> int:
    from linkserver.history import migrate
    from linkserver.loading.config import load_config

    url = args.url or load_config(_config_path(args), data_dir=_data_dir(args)).database_url
    if args.action == "upgrade":
        from linkserver.client.progress import Progress

        with Progress("upgrading the database", ticking=True) as progress:

            def step(done: int, total: int, revision: str) -> None:
                progress.update(done, note=f"migration {revision}", total=total)

            migrate.upgrade(url, on_step=step)
        print(f"database {url} is at revision {migrate.current_revision(url)}")
    else:
        print(migrate.current_revision(url) or "empty (no schema yet)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from linkserver.net.serve import serve

    return serve(
        _config_path(args),
        data_dir=_data_dir(args),
        listen=args.listen or os.environ.get(LISTEN_ENV),
        log_format=args.log_format,
    )


def _init(args: argparse.Namespace) -> int:
    from linkserver.loading.shipped import write_editable_copy

    target = Path(args.directory)
    written = write_editable_copy(target, force=args.force)
    for path in written:
        print(path)
    config = target / "config" / "linkserver.yaml"
    print(
        f"wrote {len(written)} files; edit them, check them with 'linkserver check {config}', and serve "
        f"with 'linkserver serve --config {config}' (or run 'linkserver serve' in {target})",
        file=sys.stderr,
    )
    return 0


def _config_path(args: argparse.Namespace) -> Path | None:
    return Path(args.config) if args.config else None


def _data_dir(args: argparse.Namespace) -> str | None:
    return getattr(args, "data_dir", None) or os.environ.get(DATA_DIR_ENV) or None


def _listen(text: str) -> str:
    from linkserver.loading.config import parse_listen

    try:
        parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _token(args: argparse.Namespace) -> int:
    from linkserver.net.serve import token_command

    return token_command(args.rest)


class _OneCommand:
    """An ``add_subparsers()`` for a run of one known command: its parser is built in full,
    every other command's as its name and help line only (adding every option of every
    command cost a one-shot ``linkserver fire`` more than its request did; tools/bench/cli.py)."""

    def __init__(self, subparsers: Any, command: str) -> None:
        self._subparsers = subparsers
        self._command = command

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self._command:
            return self._subparsers.add_parser(name, **kwargs)
        self._subparsers.add_parser(name, help=kwargs.get("help"), add_help=False)
        return _Ignored()


class _Ignored:
    """Takes every call a command's registration makes on a parser it will not need."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *args: Any, **kwargs: Any) -> _Ignored:
        return self


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` when only options whose shape is known come before it
    (-v, --log-format X), else None (help, version, abbreviations: argparse decides)."""
    expect_value = False
    for arg in argv:
        if expect_value:
            expect_value = False
        elif arg == "--log-format":
            expect_value = True
        elif arg in ("-v", "--verbose") or arg.startswith("--log-format="):
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given ``command``, only that one's options are added
    (the others are there by name and help line, enough for argparse's choices and errors)."""
    parser = argparse.ArgumentParser(prog="linkserver", description="LinkServer, an event server.")
    parser.add_argument("--version", action="version", version=f"linkserver {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get(LOG_FORMAT_ENV) or None,
        help=f"log lines as text or as JSON objects (default: ${LOG_FORMAT_ENV}, "
        "else server.log_format for serve, else text)",
    )
    commands: Any = parser.add_subparsers(dest="command", required=True)
    if command is not None:
        commands = _OneCommand(commands, command)

    serve = commands.add_parser("serve", help="serve the network API (HTTP and WebSocket)")
    serve.add_argument("--config", help=CONFIG_HELP)
    serve.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT",
        help=f"address to serve on (default: ${LISTEN_ENV} or the configuration's; port 0 picks a free one)",
    )
    serve.add_argument("--data-dir", help=DATA_DIR_HELP)
    serve.set_defaults(handler=_serve)

    init = commands.add_parser(
        "init", help="write an editable copy of the shipped configuration and contexts"
    )
    init.add_argument("directory", help="where to write config/linkserver.yaml and contexts/*.yaml")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(handler=_init)

    token = commands.add_parser(
        "token", help="hash passwords, create, list and revoke API tokens", add_help=False
    )
    token.add_argument("rest", nargs=argparse.REMAINDER)
    token.set_defaults(handler=_token)

    run = commands.add_parser("run", help="run the server in-process and print its events")
    run.add_argument("--config", help=CONFIG_HELP)
    run.add_argument("--data-dir", help=DATA_DIR_HELP)
    run.add_argument("--mask", default="**", help="context mask of the events to print (default: all)")
    run.add_argument("--event", default="*", help="event name to print (default: every non-hidden event)")
    run.add_argument("--filter", help="filter expression, e.g. 'level >= WARNING'")
    run.add_argument("--min-level", help="lowest level to print")
    run.add_argument("--seconds", type=float, help="stop after this many seconds")
    run.set_defaults(handler=_run)

    check = commands.add_parser("check", help="validate context and configuration YAML files")
    check.add_argument(
        "paths", nargs="*", help="files or directories (default: the configuration and its contexts)"
    )
    check.set_defaults(handler=_check)

    db = commands.add_parser("db", help="manage the history database schema")
    db.add_argument("action", choices=["upgrade", "current"])
    db.add_argument("--config", help="server configuration naming the database")
    db.add_argument("--data-dir", help=DATA_DIR_HELP)
    db.add_argument("--url", help="database URL (overrides the configuration)")
    db.set_defaults(handler=_db)

    add_client_commands(commands)
    add_shell_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["token"]:
        # `token` has its own sub-commands and options; hand them over untouched.
        return _token(argparse.Namespace(rest=argv[1:]))
    args = build_parser(_command_of(argv)).parse_args(argv)
    from linkserver import logs

    if args.log_format not in (None, *logs.FORMATS):
        print(f"linkserver: ${LOG_FORMAT_ENV} must be text or json, got {args.log_format!r}", file=sys.stderr)
        return 2
    logs.configure(logging.DEBUG if args.verbose else logging.INFO, args.log_format or "text")
    if not args.verbose:
        # Their INFO lines (every migration plugin, every job added) drown ours.
        for noisy in ("alembic", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except LinkServerError as exc:
        print(f"linkserver: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
