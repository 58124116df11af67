"""Export the results of a history query as JSON lines or CSV, page by page.

Both walk every page of the query (keyset cursors, so memory stays bounded
whatever the result size) and return how many events they wrote. The query's
``cursor`` is the starting point and ``limit`` the page size, not a total.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import TextIO

import attrs

from linkserver.core.events import Event
from linkserver.history.base import HistoryQuery, HistoryStore

CSV_COLUMNS = (
    "id", "context", "name", "level", "created", "expires", "author", "group", "data", "acknowledgements",
)  # fmt: skip
PAGE_SIZE = 1000


def iter_events(store: HistoryStore, query: HistoryQuery) -> Iterator[Event]:
    """Every event matching ``query``, in its order, fetched a page at a time."""
    page_query = attrs.evolve(query, limit=max(query.limit, PAGE_SIZE))
    while True:
        page = store.query(page_query)
        yield from page.events
        if page.next_cursor is None:
            return
        page_query = attrs.evolve(page_query, cursor=page.next_cursor)


def export_jsonl(store: HistoryStore, query: HistoryQuery, out: TextIO) -> int:
    """One JSON object per line: :meth:`Event.marshal`, which :meth:`Event.unmarshal` reads back."""
    return write_jsonl(iter_events(store, query), out)


def export_csv(store: HistoryStore, query: HistoryQuery, out: TextIO) -> int:
    """A header row, then one row per event. Data and acknowledgements are JSON in their cells.

    Open ``out`` with ``newline=""`` as the csv module requires.
    """
    return write_csv(iter_events(store, query), out)


def write_jsonl(events: Iterable[Event], out: TextIO) -> int:
    """The events as :func:`export_jsonl` writes them (``linkserver export`` uses it over the API)."""
    written = 0
    for event in events:
        out.write(json.dumps(event.marshal(), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        written += 1
    return written


def write_csv(events: Iterable[Event], out: TextIO) -> int:
    """The events as :func:`export_csv` writes them."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    for event in events:
        raw = event.marshal()
        writer.writerow(
            [
                raw["id"],
                raw["context"],
                raw["name"],
                raw["level"],
                raw["created"],
                raw["expires"] or "",
                raw["author"] or "",
                raw["group"] or "",
                json.dumps(raw["data"], ensure_ascii=False, separators=(",", ":")),
                json.dumps(raw["acknowledgements"], ensure_ascii=False, separators=(",", ":")),
            ]
        )
        written += 1
    return written
