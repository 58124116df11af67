"""A RabbitMQ or a PostgreSQL of a test's own, on a free loopback port, that the test may stop
and start again: the shared services of this machine keep running for every other test.

Both are started from the machine's own binaries (Debian's packages ``rabbitmq-server`` and
``postgresql``). Where they are missing the tests are skipped, unless
``LINKSERVER_TEST_SERVICE_BINARIES`` is set (.ci/run sets it): then they fail. As root
(CI), the servers run as the ``rabbitmq`` and ``postgres`` users, which own the data
directories, as Debian's services do.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRED = bool(os.environ.get("LINKSERVER_TEST_SERVICE_BINARIES"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _missing(what: str) -> None:
    message = f"{what} is not installed here: a private instance cannot be started"
    if REQUIRED:
        pytest.fail(f"{message} (LINKSERVER_TEST_SERVICE_BINARIES is set)")
    pytest.skip(message)


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _wait(port: int, up: bool, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while _answers(port) != up:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not {'start' if up else 'stop'} within {timeout:.0f} s")
        time.sleep(0.1)


def _owned_directory(user: str) -> Path:
    """A fresh directory the server's user may write (as root: chowned to ``user``)."""
    directory = Path(tempfile.mkdtemp(prefix=f"linkserver-{user}-"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    return directory


def _as(user: str, command: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if os.geteuid() == 0 else command


class PrivateRabbitMQ:
    """``rabbitmq-server`` as a node of its own (its own name, port, Erlang port and data)."""

    def __init__(self) -> None:
        server = shutil.which("rabbitmq-server") or (
            "/usr/sbin/rabbitmq-server" if Path("/usr/sbin/rabbitmq-server").exists() else None
        )
        if server is None:
            _missing("rabbitmq-server")
        self.server = str(server)
        self.ctl = str(Path(self.server).with_name("rabbitmqctl"))
        self.port = free_port()
        self.node = f"lstest{self.port}@localhost"
        self.directory = _owned_directory("rabbitmq") if os.geteuid() == 0 else Path(tempfile.mkdtemp())
        config = self.directory / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n")
        config.chmod(0o644)
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> PrivateRabbitMQ:
        log = (self.directory / "server.out").open("ab")
        self.process = subprocess.Popen(
            [self.server], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait(self.port, True, timeout, f"RabbitMQ {self.node}")
        return self

    def stop(self, timeout: float = 60) -> None:
        """A clean stop (what ``systemctl restart rabbitmq-server`` does first)."""
        subprocess.run(
            [self.ctl, "-n", self.node, "stop"],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self.process = None
        _wait(self.port, False, timeout, f"RabbitMQ {self.node}")

    def restart(self, pause: float = 1.0) -> None:
        self.stop()
        time.sleep(pause)  # the nodes notice the broker is gone
        self.start()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=30)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary directory), trust auth, fsync on."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (found[-1] if found else None)
        if initdb is None:
            _missing("PostgreSQL's initdb")
        self.bin = Path(str(initdb)).parent
        self.port = free_port()
        self.directory = _owned_directory("postgres") if os.geteuid() == 0 else Path(tempfile.mkdtemp())
        self.data = self.directory / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            _as(
                "postgres", [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
            ),
            capture_output=True,
            check=True,
            timeout=120,
        )

    def _ctl(self, *args: str, timeout: float = 120) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=on"
        subprocess.run(
            _as(
                "postgres",
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.directory / "log"),
                    "-o",
                    options,
                    "-w",
                    *args,
                ],
            ),
            capture_output=True,
            check=True,
            timeout=timeout,
        )

    def start(self) -> PrivatePostgres:
        self._ctl("start")
        return self

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is terminated, the server comes back."""
        self._ctl("restart", "-m", "fast")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ctl("stop", "-m", "immediate", timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    broker = PrivateRabbitMQ()
    try:
        yield broker.start()
    finally:
        broker.close()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    database = PrivatePostgres()
    try:
        yield database.start()
    finally:
        database.close()
