"""Ctrl-C during a live view (``watch``, ``alarms --live``) stops it on a flag: the interrupt
never unwinds through the client (a KeyboardInterrupt landing inside a lock's release printed
"unexpected RuntimeError: release unlocked lock" once), and no subscription thread is left.

The shell runs in a process of its own that sends itself SIGINT twenty times while the view
waits in ``Subscription.get`` (wrapped to record any exception passing through it), so a
regression fails this test instead of interrupting pytest."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ctrl_c_helpers import PRESSER, pressed
from shell_helpers import REPO, LiveServer

SCENARIO = (
    PRESSER
    + r"""
from linkserver.client import Client
from linkserver.shell.app import StreamConsole, run_line
from linkserver.shell.commands import Shell

line = sys.argv[1]
with Client(os.environ["LINKSERVER_URL"]) as client:
    shell = Shell(client, StreamConsole(sys.stdout, colour=False))
    complaints: list[str] = []
    presser.start()
    code, keep = run_line(shell, line, complaints.append)
    presser.join()
    left = [t.name for t in threading.enumerate() if t.name == "linkserver-subscription"]
    print(f"RESULT code={code} keep={keep} complaints={complaints} through={through} left={left}")
"""
)


@pytest.mark.parametrize("line", ["watch /devices.** --no-ack", "alarms --live"])
def test_ctrl_c_in_a_live_view_never_raises_inside_the_client(live: LiveServer, line: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCENARIO, line],
        cwd=REPO,
        env={**os.environ, "LINKSERVER_URL": live.url, "LINKSERVER_CREDENTIALS": str(live.credentials)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Ctrl-C returns to the prompt" in done.stdout
    assert "stopped watching" in done.stdout
    assert "RESULT code=0 keep=True complaints=[] through=[] left=[]" in done.stdout, (
        done.stdout + done.stderr
    )
    assert pressed(done.stdout) >= 5, done.stdout  # many, not one
