"""A process killed with SIGKILL in the middle of its work, and reading back what it left in
history: shared by the crash tests of the history writer, the alarm list and the stored tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from linkserver.core.events import Event
from linkserver.history.base import HistoryQuery, HistoryStore

REPO = Path(__file__).resolve().parents[1]

# The end of a child script that has ``store`` (a started history store), ``event(i)`` and
# ``count``: ``count`` durable appends, "DONE", then appends until it is killed, so that the
# kill lands in the middle of a transaction.
APPEND_THEN_KEEP_WRITING = """
for i in range(count):
    store.append(event(i)).result()  # durable: returns once committed
print("DONE", flush=True)
i = count
while True:
    store.append(event(i))
    i += 1
"""


def kill_at_first_line(code: str, *args: str) -> str:
    """Run ``python -c code args`` (the repository importable), wait for the first line it
    prints and SIGKILL it right then; that line, stripped. A child that ended by itself fails
    here with its stderr."""
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    stderr = child.stderr.read() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL, f"the child ended by itself ({child.returncode}): {stderr}"
    return line.strip()


def all_events(store: HistoryStore) -> list[Event]:
    """Every stored event, oldest first, page by page."""
    found: list[Event] = []
    query = HistoryQuery(limit=10_000, newest_first=False)
    while True:
        page = store.query(query)
        found.extend(page.events)
        if page.next_cursor is None:
            return found
        query = HistoryQuery(limit=10_000, newest_first=False, cursor=page.next_cursor)
