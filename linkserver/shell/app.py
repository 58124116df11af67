"""``linkserver shell``: log in, then read commands from a prompt, ``-c`` or standard input.

:func:`run_shell` returns the exit code: 0 ok, 1 a command failed, 2 a
usage error, 3 the server cannot be reached, 4 the login failed, 130
interrupted. Interactive, it keeps running after any error (one line each)
and exits on ``exit`` or Ctrl-D; a script (``-c`` or piped commands) stops
at the first failing command and returns its code.

Interactive comfort: Tab completion (:mod:`linkserver.shell.completion`),
suggestions from history, history saved across sessions in
``$XDG_DATA_HOME/linkserver/shell_history`` (``~/.local/share/...``), the
current context in the prompt and user, server and connection state in the
bottom toolbar. A lost connection is reported once and the next command
simply tries again (the client reconnects and logs in again by itself).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from linkserver import interrupt
from linkserver.client.errors import AuthenticationFailed, ServerUnavailable
from linkserver.client.sessions import CachedSessionClient
from linkserver.client.sync import Client
from linkserver.client.transport import TOKEN_ENV, default_url, endpoint, resolve_credentials
from linkserver.core.errors import LinkServerError
from linkserver.shell import render
from linkserver.shell.commands import Shell, ShellError, describe_error
from linkserver.shell.completion import ShellCompleter

log = logging.getLogger("linkserver.shell")

OK, FAILED, USAGE, UNREACHABLE, AUTH, INTERRUPTED = 0, 1, 2, 3, 4, 130
PASSWORD_ENV = "LINKSERVER_PASSWORD"
STYLE = Style.from_dict(
    {
        "context": "bold ansicyan",
        "user": "ansigreen",
        "bottom-toolbar": "noreverse bg:#303030 #d0d0d0",
        "offline": "bold ansired",
    }
)


def history_path() -> Path:
    """Where the command history lives: ``$XDG_DATA_HOME/linkserver/shell_history``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "linkserver" / "shell_history"


def open_history(path: Path | None = None) -> History:
    """A FileHistory at ``path`` (default :func:`history_path`); in memory if it cannot be written."""
    path = path or history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        return FileHistory(str(path))
    except OSError as exc:
        log.warning("command history not saved: %s", exc)
        return InMemoryHistory()


class StreamConsole:
    """Writes lines to ``stream``; ``ask`` asks through ``asker`` (None: nobody can answer),
    ``ask_secret`` through ``secret_asker`` (no echo).

    With ``patch_stdout`` (an interactive shell writing to the terminal),
    lines written while a question is pending go through prompt-toolkit's
    stdout proxy, so they appear above the question instead of through it.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        colour: bool,
        width: int | None = None,
        asker: Callable[[str], str] | None = None,
        patch_stdout: bool = False,
        secret_asker: Callable[[str], str] | None = None,
    ) -> None:
        self.stream, self.colour, self._width, self.asker = stream, colour, width, asker
        self.secret_asker = secret_asker
        self._patch = patch_stdout
        self._lock = threading.Lock()

    @property
    def width(self) -> int | None:
        if self._width is not None:
            return self._width
        return shutil.get_terminal_size().columns if _isatty(self.stream) else None

    def write(self, text: str = "") -> None:
        with self._lock:
            # sys.stdout is prompt-toolkit's proxy while a question is pending (patch_stdout).
            stream = sys.stdout if self._patch and self.stream is sys.__stdout__ else self.stream
            stream.write(text + "\n")
            stream.flush()

    def ask(self, question: str, meanwhile: Callable[[threading.Event], None] | None = None) -> str | None:
        """The answer to ``question``; ``meanwhile(stop)`` runs in a thread until it is given."""
        if self.asker is None:
            return None
        if meanwhile is None:
            try:
                return self.asker(question)
            except EOFError:
                return ""
        stop = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            try:
                meanwhile(stop)
            except BaseException as exc:  # noqa: BLE001 - raised again in the asking thread
                failed.append(exc)

        thread = threading.Thread(target=run, name="linkserver-shell-meanwhile", daemon=True)
        patched = patch_stdout(raw=True) if self._patch else contextlib.nullcontext()
        with patched:
            thread.start()
            try:
                return self.asker(question)
            except EOFError:
                return ""
            finally:
                stop.set()
                thread.join()
                if failed:
                    raise failed[0]

    def ask_secret(self, question: str) -> str | None:
        if self.secret_asker is None:
            return None
        try:
            return self.secret_asker(question)
        except EOFError:
            return ""


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _ask_password(question: str, input: Any, output: Any) -> str | None:  # noqa: A002
    if input is not None:
        return str(PromptSession(input=input, output=output).prompt(question, is_password=True))
    try:
        with open("/dev/tty"):
            pass
    except OSError:
        return None
    return getpass.getpass(question)


def _kept_session(
    url: str | None, user: str | None, password: str | None, ask_password: Callable[[str], str | None] | None
) -> Client:
    """A script's client: the kept session of the user (linkserver.client.sessions), if any."""
    where = endpoint(url or default_url())
    if user is None:
        local = resolve_credentials(where, None, None, None)
        if local.user is None:
            return Client(where.base)
        user, password = local.user, local.password
    name = user

    def ask() -> str:
        answer = (
            password
            if password is not None
            else (ask_password(f"password for {name}: ") if ask_password else None)
        )
        if answer is None:
            raise ShellError(f"--user {name} needs a password: run in a terminal or set ${PASSWORD_ENV}")
        return answer

    return CachedSessionClient(where.base, user=name, password=ask)


def connect(
    url: str | None,
    user: str | None,
    password: str | None,
    *,
    ask_password: Callable[[str], str | None] | None,
    complain: Callable[[str], None],
    keep_session: bool = False,
) -> Client:
    """A client that has logged in (``GET /me`` answered). Raises ShellError, ServerUnavailable,
    AuthenticationFailed; with ``ask_password`` a wrong password is asked again (3 tries).

    ``keep_session`` (scripts): reuse the session kept by the command line, as its commands
    do, instead of logging in (and out) for every script."""
    password = password if password is not None else os.environ.get(PASSWORD_ENV)
    if keep_session and not os.environ.get(TOKEN_ENV):
        try:
            kept = _kept_session(url, user, password, ask_password)
        except ValueError as exc:
            raise ShellError(str(exc)) from None
        try:
            kept.me()
            return kept
        except BaseException:
            kept.close()
            raise
    tries = 3 if user is not None and password is None and ask_password is not None else 1
    for attempt in range(tries):
        if user is not None and password is None:
            password = ask_password(f"password for {user}: ") if ask_password else None
            if password is None:
                raise ShellError(f"--user {user} needs a password: run in a terminal or set ${PASSWORD_ENV}")
        try:
            client = Client(url, user=user, password=password)
        except ValueError as exc:
            raise ShellError(str(exc)) from None
        try:
            client.me()
            return client
        except AuthenticationFailed:
            client.close()
            if attempt + 1 == tries:
                raise
            complain("wrong user name or password; try again")
            password = None
        except BaseException:
            client.close()
            raise
    raise AssertionError("unreachable")


def run_shell(
    url: str | None = None,
    user: str | None = None,
    command: str | None = None,
    stdin_script: bool = False,
    *,
    password: str | None = None,
    colour: bool | None = None,
    input: Any = None,  # noqa: A002 - prompt-toolkit's name
    output: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    script: Iterable[str] | None = None,
    history_file: Path | None = None,
) -> int:
    """Run the shell; returns the exit code (see the module docstring).

    ``command`` runs those commands (lines, or ``;``-separated) and exits;
    ``stdin_script`` reads commands from ``script`` (default: standard
    input). Otherwise it is interactive, on ``input``/``output`` if given
    (prompt-toolkit pipe input and dummy output in tests).
    """
    out, err = stdout or sys.stdout, stderr or sys.stderr
    interactive = command is None and not stdin_script and script is None
    if colour is None:
        colour = _isatty(out) and "NO_COLOR" not in os.environ

    def complain(message: str) -> None:
        err.write(render.error_line(message, colour and _isatty(err)) + "\n")
        err.flush()

    try:
        asker = None
        if interactive or input is not None or (command is not None and _isatty(sys.stdin)):
            asker = lambda question: _ask_password(question, input, output)  # noqa: E731
        try:
            client = connect(
                url, user, password, ask_password=asker, complain=complain, keep_session=not interactive
            )
        except ShellError as exc:
            complain(str(exc))
            return USAGE
        except ServerUnavailable as exc:
            complain(str(exc))
            return UNREACHABLE
        except AuthenticationFailed as exc:
            who = f"as {user}" if user else "with the local admin credentials"
            hint = "" if user else "; give --user NAME on another machine than the server's"
            complain(f"login {who} failed: {exc}{hint}")
            return AUTH
        with client:
            if interactive:
                try:
                    return _interactive(client, out, complain, colour, input, output, history_file)
                finally:
                    _logout(client)  # the interactive session ends: 'logout' on the server
            console = StreamConsole(out, colour=colour)
            shell = Shell(client, console)
            lines = command.splitlines() if command is not None else (script or sys.stdin)
            return _script(shell, lines, complain, numbered=command is None)
    except KeyboardInterrupt:
        complain("interrupted")
        return INTERRUPTED


def _logout(client: Client) -> None:
    try:
        client.logout()
    except LinkServerError as exc:
        log.debug("logout failed: %s", exc)


def run_line(shell: Shell, line: str, complain: Callable[[str], None]) -> tuple[int, bool]:
    """Run one line: ``(exit code, keep going)``; every error is one line through ``complain``."""
    try:
        with interrupt.command():  # Ctrl-C interrupts the command, or stops its live view
            keep = shell.execute(line)
        shell.online = True
        return OK, keep
    except KeyboardInterrupt:
        complain("interrupted")
        return INTERRUPTED, True
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        return OK, False
    except ShellError as exc:
        complain(describe_error(exc))
        return USAGE, True
    except ServerUnavailable as exc:
        shell.online = False
        shell.contexts.clear()
        complain(describe_error(exc))
        return UNREACHABLE, True
    except AuthenticationFailed as exc:
        complain(describe_error(exc))
        return AUTH, True
    except LinkServerError as exc:
        complain(describe_error(exc))
        return FAILED, True
    except Exception as exc:  # noqa: BLE001 - the shell must survive anything a command does
        log.debug("command %r failed", line, exc_info=True)
        complain(f"unexpected {type(exc).__name__}: {exc}")
        return FAILED, True


def _script(shell: Shell, lines: Iterable[str], complain: Callable[[str], None], numbered: bool) -> int:
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number}: " if numbered else ""

        def located(message: str, where: str = where) -> None:
            complain(where + message)

        code, keep = run_line(shell, line, located)
        if code != OK:
            return code
        if not keep:
            break
    return OK


def _interactive(
    client: Client,
    out: TextIO,
    complain: Callable[[str], None],
    colour: bool,
    input: Any,  # noqa: A002
    output: Any,
    history_file: Path | None,
) -> int:
    questions: PromptSession[str] = PromptSession(input=input, output=output)
    console = StreamConsole(
        out,
        colour=colour,
        asker=lambda q: questions.prompt(q),
        secret_asker=lambda q: questions.prompt(q, is_password=True),
        patch_stdout=output is None,
    )
    shell = Shell(client, console)
    who = client.credentials.user or "token"

    def prompt_text() -> FormattedText:
        return FormattedText([("class:context", render.context_text(shell.cwd)), ("", "> ")])

    def toolbar() -> FormattedText:
        state = [("", " connected ")] if shell.online else [("class:offline", " OFFLINE, retried on Enter ")]
        tips = " Tab completes · 'help' lists commands · Ctrl-C cancels · Ctrl-D exits"
        return FormattedText(
            [("class:user", f" {who}"), ("", f" @ {client.url} │"), *state, ("", "│" + tips)]
        )

    session: PromptSession[str] = PromptSession(
        history=open_history(history_file),
        auto_suggest=AutoSuggestFromHistory(),
        completer=ShellCompleter(shell),
        complete_while_typing=False,
        bottom_toolbar=toolbar,
        style=STYLE,
        input=input,
        output=output,
    )
    console.write(f"LinkServer shell: {who} at {client.url}. 'help' lists the commands, Ctrl-D leaves.")
    with interrupt.handling():  # a Ctrl-C between commands does nothing (see linkserver/interrupt.py)
        while True:
            try:
                # Our handler stays SIGINT's at the prompt too: prompt-toolkit's queues one
                # exit per signal, and a second ^C's exit found the prompt ended already
                # ("Application is not running", a traceback). At the prompt the terminal
                # is raw and Ctrl-C is read as a key anyway.
                line = session.prompt(prompt_text, handle_sigint=False)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            _, keep = run_line(shell, line, complain)
            if not keep:
                break
    return OK
