"""``python3 dev.py run`` then Ctrl-C stops the server as cleanly as ``linkserver serve`` does.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group;
the test starts dev.py in a group of its own and signals the group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from linkserver.history.base import HistoryQuery
from linkserver.history.sql import SqlHistoryStore

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_ctrl_c_on_dev_py_run_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "run", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        runtime = data / "linkserver.runtime.json"
        deadline = time.monotonic() + 60
        while not runtime.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "dev.py run did not start the server"
            time.sleep(0.05)
        url = json.loads(runtime.read_text())["url"]
        password = json.loads((data / "admin.credentials").read_text())["password"]
        answer = httpx.post(f"{url}/api/v1/login", json={"user": "admin", "password": password}, timeout=10)
        assert answer.status_code == 200, answer.text
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, err
    assert "SIGINT received" in err and "LinkServer stopped" in err
    store = SqlHistoryStore(f"sqlite:///{data / 'history.sqlite3'}")
    store.start()
    try:
        [last] = store.query(HistoryQuery(masks=("",), limit=1)).events
        assert last.name == "serverStopping" and last.record["reason"] == "SIGINT received"
        # The session outlives the server (kept in history): no logout at shutdown.
        assert store.query(HistoryQuery(masks=("users.admin",), names=("logout",))).events == ()
        assert store.query(HistoryQuery(masks=("devices.*",), names=("disconnected",), limit=10)).events
    finally:
        store.stop()
