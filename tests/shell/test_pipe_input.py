"""The whole shell (login, prompt, history, completion, scripts) on prompt-toolkit's pipe input."""

from __future__ import annotations

import argparse
import io
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from shell_helpers import LiveServer, TextConsole

from linkserver.client import Client
from linkserver.shell import main as shell_main
from linkserver.shell.app import AUTH, FAILED, OK, UNREACHABLE, USAGE, history_path, run_line, run_shell
from linkserver.shell.commands import Shell

BANNER = "LinkServer shell:"
Part = str | Callable[["Session"], None]


class Session:
    """Runs ``run_shell`` on a pipe input fed by a thread: strings are typed (a pause before
    each, so a Tab is completed before the next key), callables run in between."""

    def __init__(self, url: str, parts: Sequence[Part], *, wait_banner: bool = True, **kwargs: Any) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.parts, self.wait_banner = parts, wait_banner
        with create_pipe_input() as self.input:
            feeder = threading.Thread(target=self._feed, daemon=True)
            feeder.start()
            self.code = run_shell(
                url, input=self.input, output=DummyOutput(), stdout=self.out, stderr=self.err, **kwargs
            )
            feeder.join(5)

    def wait_for(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out.getvalue():
            assert time.monotonic() < deadline, f"{text!r} never came; got {self.out.getvalue()!r}"
            time.sleep(0.01)

    def _feed(self) -> None:
        if self.wait_banner:
            self.wait_for(BANNER)
        for part in self.parts:
            if callable(part):
                part(self)
            else:
                time.sleep(0.1)
                self.input.send_text(part)

    @property
    def errors(self) -> list[str]:
        return self.err.getvalue().splitlines()


def test_session_runs_commands_and_keeps_going_after_errors(live: LiveServer):
    session = Session(
        live.url,
        [
            "pwd\n",
            "bogus\n",
            "cd /nowhere\n",
            "history --filter 'level >'\n",
            "fire childAdded name=a-b path=x\n",
            "cd devices\n",
            "pwd\n",
            "\x04",
        ],
    )
    assert session.code == OK
    assert session.out.getvalue().splitlines()[1:] == ["root", "devices"]
    assert len(session.errors) == 4 and all(line.startswith("error: ") for line in session.errors)
    assert "unknown command 'bogus'" in session.errors[0]
    assert "'nowhere' does not exist" in session.errors[1]
    assert session.errors[2].startswith("error: bad filter: column")
    assert "name" in session.errors[3] and "Traceback" not in session.err.getvalue()


def test_tab_completes_a_path_in_the_session(live: LiveServer):
    device = live.new_device("tabbed")
    session = Session(live.url, ["cd /devi", "\t", f".{device[:-1]}", "\t", "\n", "pwd\n", "exit\n"])
    assert session.code == OK
    assert session.out.getvalue().splitlines()[-1] == f"devices.{device}"


def test_history_is_saved_across_sessions_and_suggested(live: LiveServer, tmp_path: Path):
    Session(live.url, ["cd devices\n", "pwd\n", "\x04"])
    assert history_path() == tmp_path / "xdg" / "linkserver" / "shell_history"
    assert "+cd devices" in history_path().read_text()
    # Up twice is 'cd devices' of the last session; then 'pw' + Right accepts the suggestion 'pwd'.
    session = Session(live.url, ["\x1b[A", "\x1b[A", "\n", "pw", "\x1b[C", "\n", "\x04"])
    assert session.out.getvalue().splitlines()[-1] == "devices"


def test_ctrl_c_at_the_prompt_cancels_the_line(live: LiveServer):
    session = Session(live.url, ["cd devi", "\x03", "pwd\n", "\x04"])
    assert session.code == OK and session.out.getvalue().splitlines()[-1] == "root"


def test_watch_asks_for_the_acknowledgement_in_the_session(live: LiveServer, client: Client):
    path = f"alerts.{live.new_alert()}"

    def fire(session: Session) -> None:
        session.wait_for("watching ")
        client.fire(path, "alert", {"message": "tank level high"})
        session.wait_for(f"{path}/alert #")

    session = Session(live.url, [f"watch /{path} --count 1 --seconds 20\n", fire, "drained it\n", "\x04"])
    assert session.code == OK, session.err.getvalue()
    assert f"acknowledged {path}/alert" in session.out.getvalue()
    event = client.history(mask=path).events[0]
    assert [(a.user, a.text) for a in event.acknowledgements] == [("admin", "drained it")]


def test_login_with_user_and_password_prompt(live: LiveServer):
    session = Session(
        live.url,
        ["operator-pw\n", lambda s: s.wait_for(BANNER), "me\n", "\x04"],
        user="operator",
        wait_banner=False,
    )
    assert session.code == OK and "operator at http://127.0.0.1" in session.out.getvalue()


def test_wrong_password_is_asked_again_then_fails_with_one_line(live: LiveServer):
    session = Session(live.url, ["no\n", "nope\n", "never\n"], user="operator", wait_banner=False)
    assert session.code == AUTH
    assert session.errors[:2] == ["error: wrong user name or password; try again"] * 2
    assert session.errors[2].startswith("error: login as operator failed: ")
    assert len(session.errors) == 3


# -- scripts: -c and standard input ------------------------------------------------------------


def run(
    url: str, command: str | None = None, script: list[str] | None = None, **kw: Any
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_shell(url, command=command, script=script, stdout=out, stderr=err, **kw)
    return code, out.getvalue(), err.getvalue()


def test_command_option_runs_and_exits(live: LiveServer):
    path = f"alerts.{live.new_alert()}"
    Client(live.url).fire(path, "alert", {"message": "x"})
    code, out, err = run(live.url, "history /alerts.** --unacked")
    assert code == OK and path in out and err == ""
    assert run(live.url, "cd devices; pwd\ncd ..; pwd")[:2] == (OK, "devices\nroot\n")


@pytest.mark.parametrize(
    ("command", "expected"),
    [("bogus", USAGE), ("event 1", FAILED), ("history --filter 'level >'", FAILED), ("cd /x", FAILED)],
)
def test_command_errors_give_a_non_zero_code_and_one_line(live: LiveServer, command: str, expected: int):
    code, out, err = run(live.url, command)
    assert code == expected and len(err.splitlines()) == 1 and err.startswith("error: ")


def test_piped_script_stops_at_the_first_error_and_names_the_line(live: LiveServer):
    code, out, err = run(live.url, script=["# comment\n", "cd devices\n", "\n", "cd nowhere\n", "pwd\n"])
    assert code == FAILED
    assert err.startswith("error: line 4: context 'devices.nowhere' does not exist")
    assert out == ""  # pwd never ran
    assert run(live.url, script=["cd alerts\n", "pwd\n", "exit\n", "bogus\n"])[:2] == (OK, "alerts\n")


def test_password_from_the_environment_for_scripts(live: LiveServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINKSERVER_PASSWORD", "operator-pw")
    code, out, _ = run(live.url, "me", user="operator")
    assert code == OK and out.startswith("operator at")


def test_server_down_is_one_line_not_a_traceback(make_live):
    server = make_live()
    url = server.url
    server.stop()
    code, out, err = run(url, "ls")
    assert code == UNREACHABLE
    assert err.startswith(f"error: cannot reach LinkServer at {url}") and len(err.splitlines()) == 1


def test_missing_local_credentials_say_what_to_do(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path
):
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(tmp_path / "missing.credentials"))
    code, _, err = run(live.url, "ls")
    assert code == AUTH and "login with the local admin credentials failed" in err and "--user" in err


def test_bad_url_is_a_usage_error():
    code, _, err = run("ftp://example", "ls")
    assert code == USAGE and "not a LinkServer address" in err


def test_lost_connection_reconnects_on_the_next_command(make_live, monkeypatch: pytest.MonkeyPatch):
    first = make_live()
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(first.credentials))
    errors: list[str] = []
    with Client(first.url) as client:
        shell = Shell(client, TextConsole())
        assert run_line(shell, "cd devices", errors.append) == (OK, True)
        first.stop()
        assert run_line(shell, "ls", errors.append) == (UNREACHABLE, True)
        assert not shell.online and "reconnects on the next command" in errors[0]
        make_live(port=first.port, data_dir=first.data_dir)  # a restart: the old session token is gone
        assert run_line(shell, "ls", errors.append) == (OK, True)
        assert shell.online and shell.cwd == "devices" and len(errors) == 1


# -- the command line ----------------------------------------------------------------------------


def test_add_shell_command_registers_shell(live: LiveServer, capsys: pytest.CaptureFixture):
    parser = argparse.ArgumentParser(prog="linkserver")
    shell_main.add_shell_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["shell", "--url", live.url, "-c", "cd alerts; pwd", "--no-colour"])
    assert args.url == live.url and args.shell_command == "cd alerts; pwd" and args.colour is False
    assert args.handler(args) == OK
    assert capsys.readouterr().out == "alerts\n"
    assert shell_main.main(["--url", live.url, "-c", "pwd"]) == OK
    assert capsys.readouterr().out == "root\n"
