"""A device controller for the cluster tests' node processes: it records what a durable and a
non-durable in-process subscription of its node get (``durable ID`` / ``live ID`` lines in
``path``), as a plugin of a user's would subscribe (``durable=True``, docs/api.md)."""

from __future__ import annotations

import threading
from typing import Any


class DurableRecorder:
    def __init__(self, path: str, mask: str = "plant.**", event: str = "reading") -> None:
        self.path, self.mask, self.event = path, mask, event
        self._lock = threading.Lock()
        self._subscriptions: list[Any] = []

    def start(self, handle: Any) -> None:
        engine = handle._engine  # an in-process plugin's engine: the subscriptions users make
        for kind, durable in (("durable", True), ("live", False)):
            self._subscriptions.append(
                engine.listen(self.mask, self.event, self._writer(kind), durable=durable)
            )

    def _writer(self, kind: str) -> Any:
        def write(event: Any) -> None:
            with self._lock, open(self.path, "a") as out:
                out.write(f"{kind} {event.id}\n")

        return write

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()


def recorded(path: Any, kind: str) -> list[int]:
    """The ids the recorder at ``path`` wrote for ``kind`` (``durable`` or ``live``), in order."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith(kind + " ")]
