"""Every Python example in docs/*.md runs as written (the README tour has its own test).

The blocks of one page run in order in one namespace, in a scratch directory
holding a copy of the checkout's ``config/`` and ``contexts/`` (so
``config/linkserver.yaml`` is what a reader of the docs has); what the
examples print is discarded. Pages about the client get a real
``linkserver serve`` on a free loopback port: ``Client()`` finds it through
``$LINKSERVER_URL`` and its admin credentials file, and the docs' example
address ``http://plant:7341`` is replaced by its address.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if "```python" in p.read_text())
SERVED = {"client.md"}  # pages whose examples talk to a running server
EXAMPLE_URL = "http://plant:7341"


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """The ```python blocks of a page with the line each starts on."""
    text = page.read_text()
    return [
        (text.count("\n", 0, found.start(1)) + 1, found.group(1))
        for found in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("config", "contexts"):
        shutil.copytree(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    for name in ("LINKSERVER_URL", "LINKSERVER_TOKEN", "LINKSERVER_CONFIG", "LINKSERVER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def served(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import httpx

    port, data = free_port(), scratch / "served"
    url = f"http://127.0.0.1:{port}"
    credentials = data / "admin.credentials"
    server = subprocess.Popen(
        [sys.executable, "-m", "linkserver", "serve", "--config", "config/linkserver.yaml"]
        + ["--listen", f"127.0.0.1:{port}", "--data-dir", str(data)],
        cwd=scratch,
        env={**os.environ, "LINKSERVER_CREDENTIALS": str(credentials)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if credentials.exists() and httpx.get(f"{url}/openapi.json", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"linkserver serve did not start: {server.stderr.read().decode()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    monkeypatch.setenv("LINKSERVER_URL", url)
    monkeypatch.setenv("LINKSERVER_CREDENTIALS", str(credentials))
    try:
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        finally:
            if server.poll() is None:
                server.kill()


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_python_examples_of_the_page_run_as_written(
    page: Path, request: pytest.FixtureRequest, capsys
) -> None:
    url = request.getfixturevalue("served") if page.name in SERVED else request.getfixturevalue("scratch")
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    blocks = python_blocks(page)
    assert blocks
    for line, block in blocks:
        if page.name in SERVED:
            block = block.replace(EXAMPLE_URL, str(url))
        code = compile("\n" * (line - 1) + block, str(page.relative_to(ROOT)), "exec")
        exec(code, namespace)  # noqa: S102 - our own documentation
    capsys.readouterr()


def test_every_page_with_python_examples_is_run() -> None:
    assert {p.name for p in DOCS} >= {"api.md", "client.md", "history.md", "server.md"}
