"""A fired event carries its definition's category; subscriptions and history filter by it."""

from __future__ import annotations

from linkserver.core.catalog import Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.filters import parse_filter
from linkserver.history.base import HistoryQuery
from linkserver.server.engine import Engine
from linkserver.testing import CapturingListener


def test_fired_events_carry_the_category_and_filters_select_by_it() -> None:
    definitions = DefinitionSet(
        [EventDefinition(name=name, persistent=True) for name in ("stateChanged", "reading")]
    )
    engine = Engine.from_catalog(Catalog(contexts=[ContextSpec(path="vms", definitions=definitions)]))
    engine.history.start()
    states = CapturingListener()
    engine.listen("**", "*", states, filter='category == "ResourceStateEvent"')
    changed = engine.fire("vms", "stateChanged", durable=True)
    engine.fire("vms", "reading", durable=True)
    assert changed.category == "ResourceStateEvent"
    assert states.events == [changed]
    page = engine.history.query(HistoryQuery(filter=parse_filter('category == "UsageEvent"')))
    assert [e.name for e in page.events] == ["reading"]
    assert changed.marshal()["category"] == "ResourceStateEvent"
