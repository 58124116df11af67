"""The wheel, installed outside a checkout, starts with its shipped contexts and config.

The wheel is built from a copy of the sources (no build isolation: the
test extra brings setuptools and wheel) and installed with ``--no-deps``
into a fresh venv that sees the dependencies of the running venv through a
``.pth`` line, so nothing is downloaded; the checkout is nowhere on its path.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKSERVER_") and k != "PYTHONPATH"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return env


def _build_and_install(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(ROOT / "linkserver", source / "linkserver", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        timeout=120,
    )
    (wheel,) = (tmp_path / "dist").glob("linkserver-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "linkserver/defaults/config/linkserver.yaml" in names
    assert {
        f"linkserver/defaults/contexts/{n}.yaml" for n in ("root", "standard", "users", "alerts", "devices")
    } <= names
    assert {f"linkserver/web/static/{n}" for n in ("index.html", "main.js", "console.css")} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The running venv's packages, but not its editable linkserver (its finder .pth is not read from here).
    Path(purelib, "linkserver-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True
    )
    return venv


def test_the_installed_wheel_serves_from_an_empty_directory_and_tools_find_it(tmp_path: Path) -> None:
    venv = _build_and_install(tmp_path)
    env = _environment(tmp_path)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import linkserver; print(linkserver.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where

    empty, elsewhere = tmp_path / "empty", tmp_path / "elsewhere"
    empty.mkdir()
    elsewhere.mkdir()
    linkserver = str(venv / "bin" / "linkserver")
    process = subprocess.Popen(
        [linkserver, "serve", "--listen", "127.0.0.1:0"],
        cwd=empty,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        runtime = empty / "data" / "linkserver.runtime.json"
        deadline = time.monotonic() + 30
        while not runtime.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no runtime file"
            time.sleep(0.05)
        url = json.loads(runtime.read_text())["url"]
        assert httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200
        page = httpx.get(f"{url}/", timeout=5)  # the web console, from the package data
        assert page.status_code == 200 and '<script type="module" src="/web/main.js">' in page.text
        assert httpx.get(f"{url}/web/main.js", timeout=5).status_code == 200
        # From another directory, with no configuration and no address given.
        found = subprocess.run(
            [linkserver, "history", "--json", "--event", "serverStarted"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert found.returncode == 0, found.stderr
        assert [e["name"] for e in json.loads(found.stdout)["events"]] == ["serverStarted"]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "simulator" in err  # the shipped configuration's controller ran
    assert not runtime.exists()

    copy = tmp_path / "mine"
    made = subprocess.run(
        [linkserver, "init", str(copy)], env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    assert (copy / "config" / "linkserver.yaml").read_text() == (
        ROOT / "config" / "linkserver.yaml"
    ).read_text()
    checked = subprocess.run(
        [linkserver, "check", str(copy / "config" / "linkserver.yaml")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = subprocess.run([linkserver, "init", str(copy)], env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "--force" in again.stderr
