"""Errors raised only by the history layer; all derive from :class:`HistoryError`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy.exc import InterfaceError, OperationalError

from linkserver.core.errors import HistoryError, HistoryUnavailable


@contextlib.contextmanager
def unavailable_as(what: str) -> Iterator[None]:
    """Say a database that cannot be reached now (down, locked, the connection lost: it may
    pass) as :class:`HistoryUnavailable`: "``what``: history is unavailable (why); try again"."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise HistoryUnavailable(f"{what}: history is unavailable ({exc.orig}); try again") from exc


class SchemaTooNew(HistoryError, RuntimeError):
    """The database was migrated by a newer LinkServer than this one."""

    def __init__(self, revision: str, head: str) -> None:
        self.revision = revision
        self.head = head
        super().__init__(
            f"the history database has schema revision {revision!r}, which this LinkServer does not "
            f"know (it knows up to {head!r}); a newer LinkServer has upgraded it. Run that newer "
            "version, or restore a backup made before the upgrade"
        )


class SchemaOutdated(HistoryError, RuntimeError):
    """The database schema is older than this code and automatic upgrade is off."""

    def __init__(self, revision: str | None, head: str) -> None:
        self.revision = revision
        self.head = head
        found = "no LinkServer schema" if revision is None else f"schema revision {revision!r}"
        super().__init__(
            f"the history database has {found}, but this LinkServer needs {head!r}; "
            "run 'linkserver db upgrade' first"
        )


class InvalidAcknowledgement(HistoryError, ValueError):
    """An acknowledgement without text or user; nothing was written."""


class InvalidCursor(HistoryError, ValueError):
    """A page cursor that no page (of history, of the alarm list) handed out."""

    def __init__(self, cursor: object) -> None:
        self.cursor = cursor
        super().__init__(
            f"invalid page cursor {cursor!r}; pass the next_cursor of the previous page of the same query"
        )


class UnstorableEvent(HistoryError, ValueError):
    """An event that cannot be written (naive datetime, data that is not JSON-able)."""


class InvalidQuery(HistoryError, ValueError):
    """A history query with an impossible criterion (a limit below 1, an unknown mask)."""


class UnstorableContext(HistoryError, ValueError):
    """A tree row that cannot be recorded (a naive change time)."""
