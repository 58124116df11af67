"""JSON log lines: the formatter, and ``linkserver serve`` logging them from its configuration."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time

import pytest
from net_helpers import REPO, write_config

from linkserver.logs import JsonFormatter


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("linkserver.test", logging.WARNING, __file__, 1, message, args, exc_info)
    made.__dict__.update(extra)
    return made


def test_one_json_object_per_line_with_traceback_and_extras() -> None:
    line = JsonFormatter().format(record("fired %s\nin %s", "x", "devices.a", exc=True, device="plc7"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "linkserver.test"
    assert entry["message"] == "fired x\nin devices.a"
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert "ValueError: boom" in entry["exception"]
    assert entry["device"] == "plc7"
    assert list(entry)[:4] == ["time", "level", "logger", "message"]


@pytest.mark.parametrize("where", ["config", "option"])
def test_serve_logs_json_lines(tmp_path: object, where: str) -> None:
    config = write_config(tmp_path)  # type: ignore[arg-type]
    if where == "config":
        config.write_text(config.read_text().replace("server:\n", "server:\n  log_format: json\n", 1))
        command = [sys.executable, "-m", "linkserver", "serve", "--config", str(config)]
    else:
        command = [
            sys.executable,
            "-m",
            "linkserver",
            "--log-format",
            "json",
            "serve",
            "--config",
            str(config),
        ]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        assert process.stderr is not None
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "listening on" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    lines += rest.splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    messages = [e["message"] for e in entries]
    assert any("listening on" in m for m in messages), lines
    assert any(m == "LinkServer stopped" for m in messages)
    assert process.returncode == 0
