"""The ``linkserver shell`` command line: ``add_shell_command`` for the CLI, and ``python -m``.

``linkserver shell [--url URL] [--user NAME] [-c COMMANDS]``: interactive in
a terminal; with ``-c`` or with commands piped on standard input it runs
them and exits (non-zero at the first error), for scripts.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="server address (default: $LINKSERVER_URL or the local server)")
    parser.add_argument(
        "--user",
        help="log in as this user (password asked, or $LINKSERVER_PASSWORD); "
        "default: the local admin credentials file",
    )
    parser.add_argument(
        "-c",
        "--command",
        dest="shell_command",
        metavar="COMMANDS",
        help="run these commands (';' or newline separated) and exit",
    )
    parser.add_argument(
        "--no-colour",
        "--no-color",
        dest="colour",
        action="store_false",
        default=None,
        help="plain text output",
    )


def _run(args: argparse.Namespace) -> int:
    from linkserver.shell.app import run_shell

    if not getattr(args, "verbose", False):  # the CLI logs at INFO: httpx would log every request
        for name in ("httpx", "httpcore", "websockets"):
            logging.getLogger(name).setLevel(logging.WARNING)

    piped = args.shell_command is None and not sys.stdin.isatty()
    return run_shell(args.url, args.user, args.shell_command, piped, colour=args.colour)


def add_shell_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``shell`` on an ``add_subparsers()`` object (handler in ``handler``)."""
    parser = subparsers.add_parser(
        "shell",
        help="the interactive admin shell of a running server",
        description="Browse the context tree, fire events, query history, watch live and "
        "acknowledge. See docs/shell.md.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linkserver shell", description="The LinkServer admin shell.")
    add_arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
