#!/usr/bin/env python3
"""The two quick-start commands; needs nothing but Python 3.11.

    python3 dev.py run     serve LinkServer on the embedded default (SQLite, shipped contexts and config)
    python3 dev.py test    run the whole test suite

Each creates ``.venv`` and installs LinkServer with its test dependencies
when that is missing or the packaging files changed. Extra arguments go to
``linkserver serve`` or to pytest. ``test`` first byte-compiles the package
and tools/ (see :func:`compile_sources`).

Then this process becomes the command (exec): Ctrl-C and SIGTERM reach the
server as they would ``linkserver serve`` run by hand, with no parent that
would kill it while it stops.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".linkserver-installed"


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"LinkServer needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256(
        b"".join((ROOT / name).read_bytes() for name in ("setup.cfg", "pyproject.toml"))
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "python").exists():
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    print("installing LinkServer and its dependencies into .venv ...", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--editable", f"{ROOT}[test,bench]"], check=True)
    STAMP.write_text(wanted)


def compile_sources() -> None:
    """Write the .pyc of every module of linkserver/ and tools/ that has none or a stale one.

    The tests start many Python processes of their own (servers, CLI commands, benchmarks), and
    where PYTHONDONTWRITEBYTECODE is set none of them writes what it compiled: each compiled
    every linkserver module it imported from source again, 0.2-0.3 s of CPU a process.
    Imports read .pyc files whatever that variable says. An error is left for pytest to report.
    """
    subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", "linkserver", "tools"], cwd=ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    ensure_environment()
    os.chdir(ROOT)
    if argv[0] == "run":
        command = [str(BIN / "linkserver"), "serve", *argv[1:]]
    else:
        compile_sources()
        command = [str(BIN / "python"), "-m", "pytest", *argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
