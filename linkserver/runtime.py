"""How local tools find a running server: its runtime file and the user's list of servers.

While ``linkserver serve`` runs it keeps ``<data_dir>/linkserver.runtime.json``
(``url``, ``pid``, ``data_dir``, ``version``, ``started``) and the same
record in the user's state directory
(``$XDG_STATE_HOME/linkserver/servers/``, default ``~/.local/state``), both
removed at an orderly stop. A record whose process is gone is stale and is
ignored (and removed from the user's list). Plain files and the standard
library only: the CLI reads them before anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

RUNTIME_FILE = "linkserver.runtime.json"
STATE_ENV = "XDG_STATE_HOME"
# The environment variables that point the server and local tools somewhere, named once
# here (standard library only) so the CLI, the clients and loading share one spelling.
CONFIG_ENV = "LINKSERVER_CONFIG"
DATA_DIR_ENV = "LINKSERVER_DATA_DIR"
LISTEN_ENV = "LINKSERVER_LISTEN"


@attrs.frozen(kw_only=True)
class RuntimeRecord:
    """One running server as its runtime file describes it."""

    url: str
    pid: int
    data_dir: Path
    version: str = ""
    started: str = ""

    def marshal(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pid": self.pid,
            "data_dir": str(self.data_dir),
            "version": self.version,
            "started": self.started,
        }

    @classmethod
    def unmarshal(cls, document: Any) -> RuntimeRecord | None:
        """The record in a parsed file, or None when it is not one."""
        if not isinstance(document, dict):
            return None
        url, pid, data_dir = document.get("url"), document.get("pid"), document.get("data_dir")
        if not isinstance(url, str) or not isinstance(pid, int) or not isinstance(data_dir, str):
            return None
        return cls(
            url=url,
            pid=pid,
            data_dir=Path(data_dir),
            version=str(document.get("version") or ""),
            started=str(document.get("started") or ""),
        )

    @property
    def alive(self) -> bool:
        """True while the process that wrote the record runs."""
        return _process_alive(self.pid)


def servers_dir() -> Path:
    """The user's list of running servers: ``$XDG_STATE_HOME/linkserver/servers``."""
    state = os.environ.get(STATE_ENV) or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "linkserver" / "servers"


def announce(record: RuntimeRecord, *, register: bool = True) -> None:
    """Write the runtime file of ``record`` (and, with ``register``, its entry in the user's list)."""
    text = json.dumps(record.marshal(), indent=2) + "\n"
    _write(Path(record.data_dir) / RUNTIME_FILE, text)
    if register:
        try:
            _write(_entry(record.data_dir), text)
        except OSError:  # an unwritable home must not stop the server; --url still works
            pass


def withdraw(data_dir: Path, pid: int | None = None) -> None:
    """Remove the runtime file of ``data_dir`` and its entry in the user's list, if they are ``pid``'s."""
    pid = os.getpid() if pid is None else pid
    for path in (Path(data_dir) / RUNTIME_FILE, _entry(data_dir)):
        record = _read(path)
        if record is not None and record.pid == pid:
            try:
                path.unlink()
            except OSError:
                pass


def read_runtime(data_dir: Path | str) -> RuntimeRecord | None:
    """The live server on ``data_dir``, or None when none runs there."""
    record = _read(Path(data_dir) / RUNTIME_FILE)
    return record if record is not None and record.alive else None


def running_servers() -> list[RuntimeRecord]:
    """The user's live servers, most recently started first; stale entries are removed."""
    records = []
    for path in _entries():
        record = _read(path)
        if record is None or not record.alive:
            try:
                path.unlink()
            except OSError:
                pass
            continue
        records.append(record)
    return sorted(records, key=lambda r: r.started, reverse=True)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _entry(data_dir: Path) -> Path:
    key = hashlib.sha256(os.fsencode(os.path.abspath(data_dir))).hexdigest()[:16]
    return servers_dir() / f"{key}.json"


def _entries() -> Iterator[Path]:
    try:
        yield from sorted(servers_dir().glob("*.json"))
    except OSError:
        return


def _read(path: Path) -> RuntimeRecord | None:
    try:
        return RuntimeRecord.unmarshal(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
