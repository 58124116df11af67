"""The category of an event is stored with it and usable in history filters, on every backend."""

from __future__ import annotations

from history_helpers import EventMaker

from linkserver.core.filters import parse_filter
from linkserver.history.base import HistoryQuery, HistoryStore


def test_the_category_comes_back_from_history_and_filters_by_it(store: HistoryStore) -> None:
    make = EventMaker()
    state = make(name="stateChanged").evolve(category="ResourceStateEvent")
    usage = make(name="measurement").evolve(category="UsageEvent")
    old = make(name="measurement")  # stored before categories: none
    for event in (state, usage, old):
        store.append(event).result(5)
    assert store.get(state.id).category == "ResourceStateEvent"
    assert store.get(old.id).category is None
    page = store.query(HistoryQuery(filter=parse_filter('category == "ResourceStateEvent"')))
    assert [e.id for e in page.events] == [state.id]
    page = store.query(HistoryQuery(filter=parse_filter("category != null"), newest_first=False))
    assert [(e.id, e.category) for e in page.events] == [(state.id, state.category), (usage.id, "UsageEvent")]
    page = store.query(HistoryQuery(filter=parse_filter("category == null")))
    assert [e.id for e in page.events] == [old.id]
