"""Ctrl-C in ``linkserver watch`` and ``linkserver status --watch`` stops them on a flag
(linkserver/interrupt.py): the interrupt never unwinds through the client, the command exits
0 without a traceback, and no subscription thread is left.

Each command runs in a process of its own, stopped by real SIGINTs, so a regression fails
this test instead of interrupting pytest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from client_helpers import ROOT, LiveServer
from ctrl_c_helpers import PRESSER, pressed

# The CLI's watch in a process that presses Ctrl-C at it (tests/ctrl_c_helpers.py).
SCENARIO = (
    PRESSER
    + r"""
from linkserver.cli import main

presser.start()
code = main(["watch", "--url", os.environ["LINKSERVER_URL"]])
presser.join()
left = [t.name for t in threading.enumerate() if t.name == "linkserver-subscription"]
print(f"RESULT code={code} through={through} left={left}", flush=True)
"""
)


def test_ctrl_c_in_watch_never_raises_inside_the_client(live: LiveServer) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO],
        cwd=ROOT,
        env={**os.environ, "LINKSERVER_URL": live.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RESULT code=0 through=[] left=[]" in done.stdout, done.stdout + done.stderr
    assert pressed(done.stdout) >= 5, done.stdout  # many, not one
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("command", "ready"),
    [(["watch", "devices.**"], "watching devices.** *"), (["status", "--watch", "0.2"], "LinkServer ")],
)
def test_an_impatient_ctrl_c_ends_a_live_command_cleanly(
    live: LiveServer, command: list[str], ready: str
) -> None:
    """The command as users run it, pressed five times in quick succession once it is live."""
    process = subprocess.Popen(
        [sys.executable, "-m", "linkserver", *command, "--url", live.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stream = process.stderr if command[0] == "watch" else process.stdout
        assert stream is not None
        first = stream.readline()  # blocks until the command is live (or has ended)
        assert ready in first, first
        time.sleep(0.3)  # in its loop: waiting for an event, or between two scrapes
        for _press in range(5):
            process.send_signal(signal.SIGINT)
            time.sleep(0.01)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, first + out + err
    assert "Traceback" not in err and "Error" not in err, err
