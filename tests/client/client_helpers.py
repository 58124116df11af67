"""The client tests' name for linkserver.testing.RunningServer.

:class:`LiveServer` has the shipped contexts, in-memory history, an
``admin`` with the generated credentials file and a ``watcher`` observer
(password :data:`OBSERVER_PASSWORD`); :meth:`restart_http` stops serving
and serves again on the same port over the same LinkServer, as a server
restart looks to a client (sessions are lost, history is kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linkserver.net.auth import read_admin_credentials
from linkserver.testing import RunningServer, password_of

ROOT = Path(__file__).resolve().parents[2]
OBSERVER_PASSWORD = password_of("watcher")


class LiveServer(RunningServer):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, users={"watcher": {"**": "observer"}})

    @property
    def credentials(self) -> dict[str, Any]:
        """The admin credentials file's content."""
        return read_admin_credentials(self.data_dir) or {}

    def start_http(self) -> None:
        if not self.serving:
            super().start_http()

    def close(self) -> None:
        self.stop()
