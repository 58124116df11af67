"""The MQTT tests' broker (tests/devices, tests/bridges): the Mosquitto of
``LINKSERVER_TEST_MQTT_URL`` (.ci/run sets mqtt://127.0.0.1:1883). Unset: the tests are
skipped; set and unreachable: they fail. ``Mosquitto`` is a broker of a test's own.
Every test gets topics under a prefix of its own, so runs never see each other's messages.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MQTT_URL = os.environ.get("LINKSERVER_TEST_MQTT_URL")
DEVICE_SCRIPT = Path(__file__).resolve().parent / "devices" / "mqtt_device.py"


def broker_url() -> str:
    """The test broker's URL; skips when unset, fails when it does not answer."""
    if not MQTT_URL:
        pytest.skip("LINKSERVER_TEST_MQTT_URL is not set")
    address = urlsplit(MQTT_URL)
    try:
        socket.create_connection((address.hostname, address.port or 1883), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"LINKSERVER_TEST_MQTT_URL={MQTT_URL} is set but the broker does not answer: {exc}")
    return MQTT_URL


def unique_prefix() -> str:
    return f"lstest/{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Publisher:
    """A plain paho client in the test process: publishes with QoS 1 and waits for the broker's ack."""

    def __init__(self, url: str, **kwargs: object) -> None:
        address = urlsplit(url)
        kwargs.setdefault("client_id", f"pub-{uuid.uuid4().hex[:8]}")
        self.client = paho.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.client.connect(address.hostname or "127.0.0.1", address.port or 1883)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_device(
    url: str, prefix: str, device: str, *messages: str, leave: bool = False
) -> subprocess.Popen[str]:
    """A device process (mqtt_device.py); it has published ``messages`` (``EVENT=JSON``) on return."""
    args = [
        sys.executable,
        str(DEVICE_SCRIPT),
        url,
        prefix,
        device,
        *messages,
        *(["--exit"] if leave else []),
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        raise AssertionError(f"device process failed: {line}{process.communicate(timeout=10)}")
    return process


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Mosquitto:
    """A Mosquitto of the test's own on a free loopback port, started and stopped at will;
    with ``users`` (name -> password) it admits only them."""

    def __init__(self, port: int | None = None, *, users: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None
        self._directory: str | None = None

    def start(self) -> None:
        command = [mosquitto_binary(), "-p", str(self.port)]
        if self.users is not None:
            self._directory = self._directory or tempfile.mkdtemp(prefix="lstest-mosquitto-")
            os.chmod(self._directory, 0o755)  # run as root, mosquitto reads its files as user mosquitto
            passwords = Path(self._directory) / "passwords"
            passwords.write_text("")
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), name, password], check=True)
            os.chmod(passwords, 0o644)
            config = Path(self._directory) / "mosquitto.conf"
            config.write_text(
                f"listener {self.port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
            )
            command = [mosquitto_binary(), "-c", str(config)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, what=f"mosquitto on port {self.port}")

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("mosquitto is not installed (.ci/run installs it): apt-get install mosquitto")
