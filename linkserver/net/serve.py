"""``linkserver serve``: the server with its network API, until SIGINT or SIGTERM.

:func:`serve` loads the configuration and its contexts (the shipped ones
when given none; refusing to start on any problem, printed as
``file:line:column: message`` like ``linkserver check``), starts the
LinkServer (history, purge scheduler, device controllers; a second server
on the same data directory is refused), creates the admin credentials on
first start, and serves the API with uvicorn on the
configured address, announcing it in the data directory's runtime file
(see :mod:`linkserver.runtime`). SIGINT/SIGTERM stop accepting connections, close the
sessions, stop the LinkServer (controllers stopped, history flushed) and
return 0.

``python -m linkserver.net.serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR]`` runs it;
:func:`token_command` is the ``hash-password`` / ``create-token`` /
``revoke-token`` / ``list-tokens`` command for the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from linkserver import __version__
from linkserver.core.durations import parse_duration
from linkserver.core.errors import ConfigError, LinkServerError
from linkserver.history.api_tokens import TokenTable
from linkserver.net.auth import (
    ADMIN,
    ADMIN_HASH_FILE,
    create_token,
    ensure_admin_credentials,
    hash_password,
    import_token_file,
    list_tokens,
    revoke_token,
)
from linkserver.net.protocol import Limits
from linkserver.runtime import DATA_DIR_ENV, LISTEN_ENV, RuntimeRecord, announce, now, withdraw

log = logging.getLogger("linkserver.serve")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stopper:
    """Turns SIGINT/SIGTERM into an orderly stop, from before uvicorn runs until the end."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.server: uvicorn.Server | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal is None:
            log.info("%s received: stopping", name)
        self.signal = name
        if self.server is not None:
            if self.server.should_exit:
                self.server.force_exit = True
            self.server.should_exit = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (it would re-raise the signal after shutdown),
    whose main loop hears of ``should_exit`` at once: uvicorn's looks at it every 0.1 s, so
    every stop (a SIGINT, each test server's) waited up to a tick before shutting down."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        wake = getattr(self, "_wake", None)  # set from a signal handler or another thread
        if value and wake is not None:
            loop, event = wake
            with contextlib.suppress(RuntimeError):  # the loop is closed: it has stopped already
                loop.call_soon_threadsafe(event.set)

    async def main_loop(self) -> None:
        """uvicorn's: ``on_tick`` every 0.1 s (the Date header once a second, the stop), but
        woken as soon as ``should_exit`` is set."""
        event = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), event)
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_socket(host: str, port: int, *, listen: bool = True) -> socket.socket:
    """A bound socket (port 0: any free port), listening unless ``listen`` is False."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then
    # (without it every answer waits ~40 ms for a delayed ACK).
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if listen:
            sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def uvicorn_config(app: Any, limits: Limits) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        # Above our own limit, so that an oversized message gets an error answer, not a closed connection.
        ws_max_size=max(16 << 20, 4 * limits.max_message_bytes),
        ws_ping_interval=limits.ping_interval,
        ws_ping_timeout=None,  # see Limits.ping_interval: a slow reader gets a gap, not 1011
    )


def serve(
    config_path: Path | None = None,
    *,
    data_dir: Path | str | None = None,
    listen: str | None = None,
    limits: Limits | None = None,
    register: bool = True,
    log_format: str | None = None,
) -> int:
    """Run the server until SIGINT/SIGTERM; 0 after an orderly stop, 1 if it cannot start.

    ``data_dir`` and ``listen`` replace the configuration's. While it
    serves, the runtime file in the data directory (and, with ``register``,
    the user's list of servers) tells local tools its address.
    ``log_format`` (``--log-format``) wins over ``server.log_format``.
    """
    from linkserver.loading.check import load_all
    from linkserver.net.app import create_app
    from linkserver.server.app import LinkServer

    limits = limits or Limits()
    stopper = _Stopper()
    with stopper.installed():
        try:
            config, catalog = load_all(config_path, data_dir=data_dir, listen=listen)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            count = len(exc.problems)
            print(
                f"{count} problem{'s' if count != 1 else ''} found; the server did not start "
                "(check the files with: linkserver check)",
                file=sys.stderr,
            )
            return 1
        if log_format is None and config.log_format != "text":
            from linkserver import logs

            logs.use_format(config.log_format)
        server = LinkServer(config, catalog)
        try:
            server.start()
        except LinkServerError as exc:  # DataDirectoryBusy, a history schema it cannot use...
            print(f"linkserver serve: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # e.g. a database that cannot be reached
            log.debug("start failed", exc_info=True)
            print(f"linkserver serve: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        reason = "server error"
        try:
            try:
                # Bound but not yet listening: local tools that see the port open must find
                # the credentials file already written.
                sock = listen_socket(config.listen_host, config.listen_port, listen=False)
            except OSError as exc:
                print(
                    f"linkserver serve: cannot listen on {config.listen_host}:{config.listen_port}: "
                    f"{exc.strerror or exc}; give another address with --listen HOST:PORT "
                    f"(or ${LISTEN_ENV}, or 'listen' in 'server' of the configuration)",
                    file=sys.stderr,
                )
                reason = "could not listen"
                return 1
            with sock:
                host, port = sock.getsockname()[:2]
                url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
                if uses_generated_admin_password(server):
                    _, created = ensure_admin_credentials(config.data_dir, url)
                    if created is not None:
                        log.info(
                            "created the admin credentials in %s (readable only by you); "
                            "local tools use them when given no credentials",
                            created,
                        )
                announce(
                    RuntimeRecord(
                        url=url, pid=os.getpid(), data_dir=config.data_dir, version=__version__, started=now()
                    ),
                    register=register,
                )
                sock.listen(128)
                app = create_app(server, limits=limits)
                # Everything made so far lives as long as the server: keep it out of the
                # collector's full passes, which otherwise stall live delivery for 50-100 ms.
                gc.collect()
                gc.freeze()
                stopper.server = _Uvicorn(uvicorn_config(app, limits))
                log.info(
                    "LinkServer %s listening on %s (API %s/api/v1, WebSocket %s/api/v1/ws)",
                    __version__,
                    url,
                    url,
                    url.replace("http", "ws", 1),
                )
                log.info("data in %s; history at %s", config.data_dir, config.database_url)
                if stopper.signal is None:
                    stopper.server.run(sockets=[sock])
                # Sessions stay open: they are kept in history, valid on every node and after
                # a restart; they end by logout, expiry or revocation.
                app.state.watcher.stop()
            reason = f"{stopper.signal} received" if stopper.signal else "stopped"
        finally:
            withdraw(config.data_dir)
            server.stop(reason)
    log.info("LinkServer stopped")
    return 0


def uses_generated_admin_password(server: Any) -> bool:
    """True when the ``admin`` user has no password yet, or still the one of ``admin.hash``
    (set by nobody but the first start): then the credentials file is (re)written."""
    if ADMIN not in server.users:
        return False
    current = server.users.password_hash(ADMIN)
    if current is None:
        return True
    try:
        return (Path(server.config.data_dir) / ADMIN_HASH_FILE).read_text().strip() == current
    except OSError:
        return False


def _token_action(args: argparse.Namespace, data_dir: Path, table: TokenTable) -> int:
    import_token_file(data_dir, table)
    if args.action == "create-token":
        grants = {}
        for grant in args.grant:
            mask, sep, level = grant.rpartition("=")
            if not sep:
                print(f"--grant {grant!r}: write MASK=LEVEL, e.g. devices.**=operator", file=sys.stderr)
                return 1
            grants[mask] = level
        lifetime = parse_duration(args.expires) if args.expires else None
        print(create_token(table, args.name, grants, lifetime))
    elif args.action == "revoke-token":
        if not revoke_token(table, args.name):
            print(f"no API token {args.name!r}", file=sys.stderr)
            return 1
    else:
        for name, entry in sorted(list_tokens(table).items()):
            grants_text = ", ".join(f"{m}={lvl}" for m, lvl in entry.get("grants", {}).items())
            print(f"{name}\t{grants_text}\texpires {entry.get('expires') or 'never'}")
    return 0


def token_command(argv: Sequence[str] | None = None) -> int:
    """``hash-password``, ``create-token NAME --grant MASK=LEVEL... [--expires 90d]``,
    ``revoke-token NAME`` and ``list-tokens``; the data directory comes from ``--config``."""
    config_help = "server configuration (default: config/linkserver.yaml)"
    parser = argparse.ArgumentParser(prog="linkserver token", description="Passwords and API tokens.")
    data_dir_help = f"data directory holding the tokens (default: ${DATA_DIR_ENV} or the configuration's)"
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--data-dir", help=data_dir_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help=data_dir_help)
    commands = parser.add_subparsers(dest="action", required=True)
    commands.add_parser("hash-password", help="print a password_hash for the configuration")
    create = commands.add_parser("create-token", parents=[common], help="create an API token, print it once")
    create.add_argument("name")
    create.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="MASK=LEVEL",
        help="e.g. 'devices.**=operator' (repeatable)",
    )
    create.add_argument("--expires", help="lifetime such as 90d (default: never)")
    revoke = commands.add_parser("revoke-token", parents=[common], help="remove an API token")
    revoke.add_argument("name")
    commands.add_parser("list-tokens", parents=[common], help="list API tokens (names and grants)")
    args = parser.parse_args(argv)
    try:
        if args.action == "hash-password":
            password = (
                getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
            )
            if not password:
                print("an empty password is not allowed", file=sys.stderr)
                return 1
            print(hash_password(password))
            return 0
        from linkserver.loading.config import load_config
        from linkserver.server.app import MEMORY_URL, LinkServer

        config = load_config(
            Path(args.config) if args.config else None, data_dir=args.data_dir or os.environ.get(DATA_DIR_ENV)
        )
        if config.database_url == MEMORY_URL:
            print(
                f"linkserver token: the configuration's history is in memory ({MEMORY_URL}): API tokens "
                "live in the history database, so a token made here would be gone at once; give "
                "history.database_url a SQLite file or PostgreSQL",
                file=sys.stderr,
            )
            return 1
        history = LinkServer.open_history(config)
        history.start()  # the tokens live in the history database, shared by every node
        try:
            return _token_action(args, config.data_dir, history.api_tokens)
        finally:
            history.stop()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except (LinkServerError, ValueError, OSError) as exc:
        print(f"linkserver token: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m linkserver.net.serve [-v] [serve options]``: the same as ``linkserver serve``."""
    from linkserver.cli import main as cli_main

    rest = list(sys.argv[1:] if argv is None else argv)
    verbose = [arg for arg in rest if arg in ("-v", "--verbose")]
    return cli_main(verbose[:1] + ["serve"] + [arg for arg in rest if arg not in verbose])


if __name__ == "__main__":
    sys.exit(main())
