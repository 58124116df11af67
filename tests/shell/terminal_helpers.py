"""A real ``linkserver serve`` and real shells in pseudo-terminals (pexpect), for the shell's
end-to-end tests: :func:`serve` starts the server as a process, :class:`Terminal` runs a shell
against it and searches what it shows."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pexpect = pytest.importorskip("pexpect")

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TIMEOUT = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(url: str, credentials: Path) -> bool:
    """The server answers HTTP and has written the admin credentials file."""
    import httpx

    try:
        return credentials.exists() and httpx.get(f"{url}/openapi.json", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serve(
    tmp_path: Path, *, contexts: Sequence[Path] = (), database_url: str = "memory://"
) -> Iterator[tuple[str, dict[str, str]]]:
    """``linkserver serve`` on a free loopback port with the shipped contexts (and ``contexts``):
    ``(url, env)``, the environment a shell needs to log in as admin; stopped with SIGINT after,
    which it must answer by exiting 0."""
    port = free_port()
    config = tmp_path / "linkserver.yaml"
    paths = [str(REPO / "contexts"), *(str(path) for path in contexts)]
    config.write_text(
        "server:\n"
        f"  data_dir: {json.dumps(str(tmp_path / 'data'))}\n"
        f"  contexts: {json.dumps(paths)}\n"
        f"  listen: 127.0.0.1:{port}\n"
        "history:\n"
        f"  database_url: {json.dumps(database_url)}\n"
    )
    env = {
        **os.environ,
        "LINKSERVER_CREDENTIALS": str(tmp_path / "data" / "admin.credentials"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
    }
    for name in ("LINKSERVER_URL", "LINKSERVER_TOKEN", "LINKSERVER_PASSWORD", "NO_COLOR"):
        env.pop(name, None)
    server = subprocess.Popen(
        [PYTHON, "-m", "linkserver.net.serve", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not ready(url, Path(env["LINKSERVER_CREDENTIALS"])):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"linkserver serve did not start: {server.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    try:
        yield url, env
    finally:
        server.send_signal(signal.SIGINT)
        try:
            assert server.wait(15) == 0
        finally:
            if server.poll() is None:
                server.kill()


def admin_client(url: str, env: dict[str, str]) -> Any:
    """A client of the served server logged in as admin (to set up what the shells see)."""
    from linkserver.client import Client

    password = json.loads(Path(env["LINKSERVER_CREDENTIALS"]).read_text())["password"]
    return Client(url, user="admin", password=password)


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


class Terminal:
    """A shell in a pseudo-terminal; ``expect`` searches its output with escape codes removed."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.child = pexpect.spawn(
            PYTHON,
            ["-m", "linkserver.shell.main", "--url", url, "--no-colour"],
            cwd=str(REPO),
            env=env,
            encoding="utf-8",
            dimensions=(40, 200),
        )
        self.raw, self.pos = "", 0
        self.expect(r"LinkServer shell: admin at ")
        self.expect(r"root>")

    @property
    def text(self) -> str:
        return _ESCAPES.sub("", self.raw)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.text, self.pos)
            if found:
                self.pos = found.end()
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} did not appear; the terminal shows:\n{self.text[-2000:]}")
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=0.1)
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                if regex.search(self.text, self.pos) is None:
                    pytest.fail(f"the shell ended before {pattern!r}:\n{self.text[-2000:]}")

    def type(self, text: str, pause: float = 0.0) -> None:
        self.child.send(text)
        time.sleep(pause)

    def wait_end(self) -> int:
        self.child.expect(pexpect.EOF, timeout=TIMEOUT)
        self.child.close()
        return int(self.child.exitstatus)
