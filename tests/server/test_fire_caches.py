"""The engine's per-path caches stay bounded, share what paths have in common, and stay correct."""

from __future__ import annotations

import pytest

from linkserver.core.definitions import EventDefinition
from linkserver.core.formats import Field, TableFormat
from linkserver.server.engine import Engine
from linkserver.testing import CapturingListener, engine_with

READING = TableFormat(fields=[Field(name="value", type="float")])


def devices(count: int, **options: object) -> Engine:
    engine = engine_with(
        {"devices": []},
        templates={"device": [EventDefinition(name="measurement", format=READING)]},
        child_templates={"devices": "device"},
        **options,
    )
    for n in range(count):
        engine.add_context(f"devices.d{n}")
    return engine


def test_firing_into_more_paths_than_the_cache_holds_keeps_it_bounded_and_delivers_everything() -> None:
    engine = devices(300, cache_size=50)
    seen = CapturingListener()
    engine.listen("devices.*", "measurement", seen)
    for _ in range(2):
        for n in range(300):
            engine.fire(f"devices.d{n}", "measurement", {"value": n})
    assert len(seen.events) == 600
    assert [event.context for event in seen.events[:300]] == [f"devices.d{n}" for n in range(300)]
    assert len(engine._targets["measurement"]) <= 50
    assert max(len(by_path) for by_path in engine._index._targets.values()) <= engine._index.cache_size


def test_paths_with_the_same_subscriptions_share_one_delivery_list() -> None:
    engine = devices(200)
    engine.listen("devices.*", "measurement", CapturingListener())
    engine.listen("devices.**", "*", CapturingListener(), min_level="WARNING")
    for n in range(200):
        engine.fire(f"devices.d{n}", "measurement", {"value": 1.0})
    targets = list(engine._targets["measurement"].values())
    assert len({id(target.listeners) for target in targets}) == 1
    assert len({id(target.deliveries) for target in targets}) == 1
    by_path = engine._index._wildcard_by_path  # "devices" itself matches devices.** only
    assert len({id(subs) for path, subs in by_path.items() if path.startswith("devices.")}) == 1


def test_a_subscription_cancelled_or_added_after_paths_were_cached_is_honoured() -> None:
    engine = devices(3, cache_size=2)
    first, second = CapturingListener(), CapturingListener()
    subscription = engine.listen("devices.*", "measurement", first)
    for n in range(3):
        engine.fire(f"devices.d{n}", "measurement", {"value": 1.0})
    subscription.cancel()
    engine.listen("devices.d1", "measurement", second)
    for n in range(3):
        engine.fire(f"devices.d{n}", "measurement", {"value": 2.0})
    assert [event.data[0]["value"] for event in first.events] == [1.0, 1.0, 1.0]
    assert [event.context for event in second.events] == ["devices.d1"]


def test_a_removed_context_leaves_no_cached_target() -> None:
    engine = devices(2)
    engine.listen("devices.*", "measurement", CapturingListener())
    engine.fire("devices.d1", "measurement", {"value": 1.0})
    engine.remove_context("devices.d1")
    assert "devices.d1" not in engine._targets["measurement"]
    assert all("devices.d1" not in by_path for by_path in engine._index._targets.values())


def test_a_listener_cancelling_itself_during_a_fire_gets_nothing_more() -> None:
    engine = devices(1)
    got: list[int] = []
    holder: list[object] = []

    def once(event: object) -> None:
        got.append(1)
        holder[0].cancel()  # type: ignore[attr-defined]

    holder.append(engine.listen("devices.*", "measurement", once))
    for _ in range(3):
        engine.fire("devices.d0", "measurement", {"value": 1.0})
    assert got == [1]


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cache_size must be at least 1"):
        Engine(cache_size=0)
