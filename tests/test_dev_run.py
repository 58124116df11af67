"""``python3 dev.py run`` then Ctrl-C stops the server as cleanly as ``linkserver serve`` does.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group;
the test starts dev.py in a group of its own and signals the group.
"""

from __future__ import annotations

import importlib.util
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


def test_dev_py_test_compiles_the_package_first_even_where_bytecode_is_not_written() -> None:
    """The tests' servers and CLI commands are processes of their own: each compiled every
    module it imported from source while PYTHONDONTWRITEBYTECODE was set and no .pyc was there."""
    source = ROOT / "linkserver" / "runtime.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)  # rewritten below (and by any dev.py test)
    done = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "test", "--version"],  # pytest starts, runs nothing
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stale = []
    for module in sorted((ROOT / "linkserver").rglob("*.py")):
        pyc = Path(importlib.util.cache_from_source(str(module)))
        # A timestamp .pyc holds its source's mtime and size (bytes 8-16); import uses it only then.
        header = pyc.read_bytes()[:16] if pyc.exists() else b""
        flags = int.from_bytes(header[4:8], "little") if header else 0
        stat = module.stat()
        current = len(header) == 16 and (
            flags != 0
            or (
                int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
                and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF
            )
        )
        if not current:
            stale.append(str(module.relative_to(ROOT)))
    assert stale == [], f"no current .pyc for {stale}"
