"""Long CLI operations show progress on a terminal (stderr a tty) and never in a pipe.

The commands run as real processes, their stderr once a pseudo-terminal and
once a pipe.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from linkserver.client.progress import Progress
from linkserver.testing import RunningServer


def run(args: list[str], *, terminal: bool, env: dict[str, str] | None = None, cwd: Path | None = None):
    """(exit status, stdout, stderr) of ``linkserver ARGS``; stderr is a pty when ``terminal``."""
    command = [sys.executable, "-m", "linkserver", *args]
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment, cwd=cwd)
        return done.returncode, done.stdout, done.stderr
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=secondary, text=True, env=environment, cwd=cwd
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        out = process.stdout.read() if process.stdout else ""
        process.wait(timeout=120)
    finally:
        os.close(main)
    return process.returncode, out, b"".join(chunks).decode(errors="replace")


def test_progress_draws_on_a_terminal_only() -> None:
    piped = io.StringIO()
    with Progress("copying", 10, stream=piped) as progress:
        progress.advance(3)
    assert piped.getvalue() == "" and not progress.enabled
    main, secondary = pty.openpty()
    try:
        with (
            open(secondary, "w", closefd=True) as terminal,
            Progress("copying", 10, stream=terminal) as shown,
        ):
            assert shown.enabled
            shown.update(3, note="files")
            assert shown.line().startswith("copying: 3/10 (30%) files")
        text = ""
        while select.select([main], [], [], 0.5)[0]:  # each write may arrive as a read of its own
            try:
                text += os.read(main, 4096).decode()
            except OSError:  # EIO: nothing left and the other side closed
                break
    finally:
        os.close(main)
    assert "\rcopying: 3/10 (30%) files" in text and text.endswith("\r")  # cleared at the end


def test_check_of_many_files_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    for n in range(40):
        (tmp_path / f"c{n}.yaml").write_text(f"contexts: {{c{n}: {{}}}}\n")
    code, _, err = run(["check", str(tmp_path)], terminal=True)
    assert code == 0 and "\rchecking: " in err and "all files are valid" in err
    code, _, err = run(["check", str(tmp_path)], terminal=False)
    assert code == 0 and err == "all files are valid\n"


def test_db_upgrade_shows_its_migrations_on_a_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    code, out, err = run(["db", "upgrade", "--url", url], terminal=True)
    assert code == 0 and "\rupgrading the database: " in err and "is at revision" in out
    code, out, err = run(["db", "upgrade", "--url", url.replace("h.sqlite3", "i.sqlite3")], terminal=False)
    assert code == 0 and err == ""


@pytest.fixture(scope="module")
def live() -> RunningServer:
    server = RunningServer(database_url="sqlite")
    path = server.new_device("export")
    for n in range(30):
        server.server.fire(path, "connected", {"address": f"10.0.0.{n}"}, durable=n == 29)
    yield server
    server.stop()


def test_export_writes_every_event_with_progress_only_on_a_terminal(
    live: RunningServer, tmp_path: Path
) -> None:
    env = {"LINKSERVER_URL": live.url, "LINKSERVER_CREDENTIALS": str(live.credentials_path)}
    target = tmp_path / "out.csv"
    code, out, err = run(
        ["export", "--event", "connected", "--format", "csv", "-o", str(target)], terminal=True, env=env
    )
    assert code == 0, err
    assert "\rexporting: " in err and "/30 " in err and "exported 30 events" in err
    assert len(target.read_text().splitlines()) == 31  # the header and 30 rows
    code, out, err = run(["export", "--event", "connected", "--oldest-first"], terminal=False, env=env)
    assert code == 0 and err == "exported 30 events\n"
    addresses = [json.loads(line)["data"][0]["address"] for line in out.splitlines()]
    assert addresses == [f"10.0.0.{n}" for n in range(30)]


def test_purge_now_shows_that_it_works_on_a_terminal(live: RunningServer) -> None:
    env = {"LINKSERVER_URL": live.url, "LINKSERVER_CREDENTIALS": str(live.credentials_path)}
    code, out, err = run(["purge"], terminal=True, env=env)
    assert code == 0 and out.startswith("purged ") and "purging expired events" in err
    code, out, err = run(["purge", "--json"], terminal=False, env=env)
    assert code == 0 and json.loads(out) == {"removed": 0, "alarms_removed": 0} and err == ""
