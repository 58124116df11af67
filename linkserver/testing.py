"""Helpers for testing code that uses LinkServer: a capturing listener and an
in-memory engine built from inline definitions.

    from linkserver.testing import CapturingListener, engine_with

    engine = engine_with({"devices.plc7": [EventDefinition(name="alarm")]})
    seen = CapturingListener()
    engine.listen("devices.*", "alarm", seen)
    engine.fire("devices.plc7", "alarm")
    assert seen.names() == ["alarm"]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from linkserver.core.catalog import Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.events import Event
from linkserver.history.memory import MemoryHistoryStore
from linkserver.server.engine import Engine


class CapturingListener:
    """A listener that keeps every event it gets; thread-safe, with waiting."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._condition = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._condition:
            self.events.append(event)
            self._condition.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Wait until at least ``count`` events arrived; AssertionError on timeout."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} events within {timeout}s, got {len(self.events)}")
            return list(self.events)

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def clear(self) -> None:
        with self._condition:
            self.events.clear()


def engine_with(
    contexts: Mapping[str, Iterable[EventDefinition]],
    *,
    templates: Mapping[str, Iterable[EventDefinition]] | None = None,
    child_templates: Mapping[str, str] | None = None,
    **kwargs: object,
) -> Engine:
    """An engine on an in-memory history with the given contexts and definitions.

    ``child_templates`` maps a context path to the template its run-time
    children get (e.g. ``{"devices": "device"}``).
    """
    named = {name: DefinitionSet(defs, name=name) for name, defs in (templates or {}).items()}
    children = child_templates or {}
    specs = [
        ContextSpec(
            path=path,
            definitions=DefinitionSet(definitions),
            child_definitions=named[children[path]] if path in children else None,
        )
        for path, definitions in sorted(contexts.items(), key=lambda item: item[0].count("."))
    ]
    kwargs.setdefault("history", MemoryHistoryStore())
    engine = Engine.from_catalog(Catalog(templates=named, contexts=specs), **kwargs)  # type: ignore[arg-type]
    engine.history.start()
    return engine
