"""The TreeStore interface: the contexts added and removed at run time, kept with history.

The YAML files define the tree a server starts from; a tree store holds what
was added or removed since, one row per context path, so that a restart (or a
second server on the same database) builds the same tree. A removed context
keeps its row as a tombstone: it says which definitions the context had, so
its events stay readable only by whoever could read them while it lived.

Every change gets the next number of one sequence (``seq``), so "every row with
``seq`` greater than the last one seen" is a change feed.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

import attrs

from linkserver.core.paths import display, parse_path
from linkserver.history.errors import UnstorableContext


def _aware(instance: StoredContext, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise UnstorableContext(
            f"context {display(instance.path)}: changed {value.isoformat()} has no timezone; "
            "add one, e.g. UTC"
        )


@attrs.frozen(kw_only=True)
class StoredContext:
    """One context path's last recorded change.

    ``removed`` False: the context was added at run time and exists;
    True: it was removed (whether it came from YAML or was added at run time).
    ``template`` names the template its definitions came from; None means its
    parent's child definitions (the default of an added context).
    ``child_template`` names the template of the definitions its own children
    get; None: none. ``changed`` is when the change was recorded, ``node`` the
    node id of the server that made it (a node following the feed can skip its own).
    ``seq`` is assigned by the store (0 in a row not yet stored).
    """

    path: str = attrs.field(converter=parse_path)
    removed: bool = False
    template: str | None = None
    child_template: str | None = None
    description: str = ""
    changed: datetime = attrs.field(validator=_aware)
    node: int = 0
    seq: int = 0


class TreeStore(abc.ABC):
    """Where the run-time tree is kept. History stores implement it too."""

    @abc.abstractmethod
    def save_contexts(self, contexts: Sequence[StoredContext]) -> int:
        """Record the given rows in one transaction, replacing any row of the same path.

        Each row gets the next change number, in the order given; returns the
        last one. The rows are committed (with the same durability as a
        durable fire) before this returns; on error nothing is recorded and
        HistoryUnavailable (the database is down or locked: try again),
        HistoryError or ServerStopped is raised. Rows' ``seq`` is ignored.
        """

    @abc.abstractmethod
    def load_contexts(self, after: int = 0) -> list[StoredContext]:
        """Every row whose change number is greater than ``after``, in change order."""
