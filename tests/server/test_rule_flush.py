"""Rule state is written at once after a rule fires, also while another write of it is still
running (APScheduler would skip a run of a job that runs: the alert waited for the next interval)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from linkserver.core.rules import Rule, RuleKind
from linkserver.history.rule_state import RuleStateStore
from linkserver.history.sql import SqlHistoryStore
from linkserver.loading import load_contexts
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.server.engine import Engine
from linkserver.server.rules import RuleHost


class HeldStore(RuleStateStore):
    """The real store, whose next save waits until ``release`` is set (``entered`` says it does)."""

    def __init__(self, inner: RuleStateStore) -> None:
        self.inner = inner
        self.hold = False
        self.entered, self.release = threading.Event(), threading.Event()
        self.saved = threading.Condition()

    def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        return self.inner.load()

    def save(self, changes: Any) -> None:
        if self.hold:
            self.hold = False
            self.entered.set()
            assert self.release.wait(10)
        self.inner.save(changes)
        with self.saved:
            self.saved.notify_all()

    def forget(self, rules: Any) -> None:
        self.inner.forget(rules)


def test_an_alert_fired_during_a_flush_is_stored_right_after_it(tmp_path: Path) -> None:
    store = SqlHistoryStore(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    engine = Engine.from_catalog(load_contexts([SHIPPED_CONTEXTS]), history=store)
    store.start()
    for name in ("d1", "d2"):
        engine.add_context(f"devices.{name}")
    rule = Rule(name="any", kind=RuleKind.COUNT, mask="devices.*", event="error", count=1,
                within=timedelta(hours=1), alert="alerts.any")  # fmt: skip
    host = RuleHost(engine, store, [(rule, True)], tick=3600, flush=3600)  # no interval run meanwhile
    host.start()
    try:
        assert host._store is not None
        held = HeldStore(host._store)
        host._store = held

        def stored() -> dict[str, Any]:
            return held.inner.load().get("any", {})

        held.hold = True
        engine.fire("devices.d1", "error", {"code": "E1", "message": "first"})  # opens; its flush is held
        assert held.entered.wait(10)
        engine.fire("devices.d2", "error", {"code": "E2", "message": "second"})  # opens during that flush
        held.release.set()
        with held.saved:
            assert held.saved.wait_for(lambda: {"devices.d1", "devices.d2"} <= set(stored()), timeout=10), (
                stored()
            )
        assert all(row["open"]["alert_id"] for row in stored().values())  # with the alerts' ids
    finally:
        host.stop()
        engine.close()
        store.stop()
