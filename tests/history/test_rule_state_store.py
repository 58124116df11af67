"""The rule state store, on every backend: rows written in one transaction, read back whole,
replaced, deleted one by one and forgotten per rule."""

from __future__ import annotations

from linkserver.history.base import HistoryStore
from linkserver.history.rule_state import open_rule_state


def test_rows_are_saved_replaced_deleted_and_read_back(store: HistoryStore) -> None:
    states = open_rule_state(store)
    assert states.load() == {}
    states.save(
        [
            ("burst", "devices.a", {"times": ["2026-12-01T12:00:00+00:00"], "open": None}),
            ("burst", "devices.b", {"times": [], "open": {"since": "x", "alert_id": 7}}),
            ("silent", "devices.a", {"last_seen": "2026-12-01T12:00:00+00:00", "open": None}),
        ]
    )
    states.save([("burst", "devices.a", {"times": [], "open": None}), ("burst", "devices.b", None)])
    assert states.load() == {
        "burst": {"devices.a": {"times": [], "open": None}},
        "silent": {"devices.a": {"last_seen": "2026-12-01T12:00:00+00:00", "open": None}},
    }
    states.save([("burst", "nothing", None)])  # deleting a row that is not there is no error
    states.forget(["burst"])
    assert list(states.load()) == ["silent"]


def test_many_rows_go_in_one_save(store: HistoryStore) -> None:
    states = open_rule_state(store)
    states.save([("r", f"k{i}", {"n": i}) for i in range(1500)])
    states.save([("r", f"k{i}", None) for i in range(1200)])
    assert len(states.load()["r"]) == 300
