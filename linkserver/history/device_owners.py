"""Which device controller owns which device context, shared by the nodes of one database.

One row per owned device context: the controller's name, the user or token a
remote controller connects as (None: a controller inside the node's own
process) and the node id it was claimed on. A row is changed only by
compare-and-set (:meth:`DeviceOwnerTable.put` with the row it replaces), so
two nodes claiming one device at once never both win. Whether an owner is
still there (its node alive, its context not removed) is the server's
question (linkserver/server/controllers.py), not this table's.

Every implementation passes the contract suite in ``tests/history/test_device_owners_store.py``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable
from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class OwnerRow:
    path: str
    controller: str
    principal: str | None = None
    node: int
    claimed: datetime = attrs.field(eq=False)


class DeviceOwnerTable(abc.ABC):
    """The device owners of one history database. Thread-safe; each method is one short transaction."""

    @abc.abstractmethod
    def get(self, path: str) -> OwnerRow | None:
        """The owner row of ``path``, if any."""

    @abc.abstractmethod
    def under(self, path: str) -> list[OwnerRow]:
        """The rows of ``path`` and of every context below it, by path."""

    @abc.abstractmethod
    def put(self, row: OwnerRow, replaces: OwnerRow | None) -> bool:
        """Write ``row`` if the current row of its path is still ``replaces`` (None: there is
        none); False (nothing written) if another write came first."""

    @abc.abstractmethod
    def delete(self, paths: Iterable[str], node: int) -> int:
        """Delete the rows of ``paths`` claimed on ``node``; returns how many."""

    @abc.abstractmethod
    def delete_node(self, node: int) -> int:
        """Delete every row claimed on ``node`` (a node starting again: its owners are gone)."""


class MemoryDeviceOwnerTable(DeviceOwnerTable):
    """Rows in a dict: for tests and the in-memory history."""

    def __init__(self) -> None:
        self._rows: dict[str, OwnerRow] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> OwnerRow | None:
        with self._lock:
            return self._rows.get(path)

    def under(self, path: str) -> list[OwnerRow]:
        prefix = path + "." if path else ""
        with self._lock:
            return sorted(
                (r for p, r in self._rows.items() if p == path or p.startswith(prefix)), key=lambda r: r.path
            )

    def put(self, row: OwnerRow, replaces: OwnerRow | None) -> bool:
        with self._lock:
            if self._rows.get(row.path) != replaces:
                return False
            self._rows[row.path] = row
            return True

    def delete(self, paths: Iterable[str], node: int) -> int:
        with self._lock:
            gone = [p for p in set(paths) if (r := self._rows.get(p)) is not None and r.node == node]
            for path in gone:
                del self._rows[path]
            return len(gone)

    def delete_node(self, node: int) -> int:
        with self._lock:
            gone = [p for p, r in self._rows.items() if r.node == node]
            for path in gone:
                del self._rows[path]
            return len(gone)
