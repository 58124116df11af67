#!/usr/bin/env python3
"""The alarm layer's cost on firing (issue 10), measured in one run.

``count_rules`` (>= 0.7x): LinkServer fires the shipped, persistent ``error``
event into 1,000 device contexts in turn (devices.d0 ... devices.d999) on a
SqlHistoryStore (SQLite, default settings), once with 1,000 count rules
running (server/rules.py's RuleHost: one rule per device, each on its own
mask ``devices.dN``, 50 errors within an hour per context; their alerts open
during the run, and the rule state of the changed keys is written to the
``rule_state`` table every five seconds by the host's own job) and once with no
rules on an otherwise identical engine and store. Rounds interleaved, best
round; the figure is fires per wall-clock second of the firing loop (the
writer thread and the rules' state writer share the GIL with it), and the
writer catches up between rounds. A rule that scanned every rule per fire
would make this ratio about 1/1000.

``alarm_reduction`` (>= 0.7x): the persistent ``fault`` event fired into 1,000 contexts in
turn, each firing reducing its context's alarm (reduction_key ``{context}:{name}:{data.code}``:
1,000 active alarms, upserted in the events' commit: on this SQLite store by the triggers of
history/alarm_triggers.py on the events' INSERT, which server/alarms.py's same-commit hook installs
on the writer's connection), against the same event without a reduction_key on an
otherwise identical engine and SQLite store. Nobody watches alarmChanged (nothing to notify).

    python tools/bench/alarms.py [--quick] [--part count_rules|alarm_reduction]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from linkserver.core.rules import Rule, RuleKind  # noqa: E402
from linkserver.history.sql import SqlHistoryStore  # noqa: E402
from linkserver.loading import load_contexts  # noqa: E402
from linkserver.server.access import HistoryAccess  # noqa: E402
from linkserver.server.alarms import Alarms  # noqa: E402
from linkserver.server.engine import Engine  # noqa: E402
from linkserver.server.rules import RuleHost  # noqa: E402

DEVICES = 1000
ERROR = {"code": "E42", "message": "motor overload"}


def shipped_contexts() -> Path:
    for candidate in (ROOT / "contexts", ROOT / "linkserver" / "defaults" / "contexts"):
        if (candidate / "devices.yaml").exists():
            return candidate
    raise SystemExit("cannot find the shipped contexts (devices.yaml)")


def measure(call: Callable[[], object], seconds: float) -> float:
    """Calls per wall-clock second over about ``seconds``."""
    batch = 1000
    count = 0
    gc.collect()
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            call()
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def best(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    found = dict.fromkeys(sides, 0.0)
    for _ in range(rounds):
        for name, run in sides.items():
            found[name] = max(found[name], run())
    return found


class Side:
    """An engine on its own SQLite history with the device contexts, firing ``error`` round robin."""

    def __init__(self, directory: Path, name: str) -> None:
        self.store = SqlHistoryStore(f"sqlite:///{directory / f'{name}.sqlite3'}")
        self.engine = Engine.from_catalog(load_contexts([shipped_contexts()]), history=self.store)
        self.store.start()
        self.paths = [f"devices.d{i}" for i in range(DEVICES)]
        for path in self.paths:
            self.engine.add_context(path)
        self.host: RuleHost | None = None
        self._next = 0

    def with_count_rules(self) -> None:
        rules = [
            (
                Rule(
                    name=f"burst{i}",
                    kind=RuleKind.COUNT,
                    mask=path,
                    event="error",
                    count=50,
                    within=timedelta(hours=1),
                    alert=f"alerts.burst{i}",
                ),
                True,
            )
            for i, path in enumerate(self.paths)
        ]
        self.host = RuleHost(self.engine, self.store, rules)
        self.host.start()

    def fire(self) -> None:
        index = self._next
        self._next = (index + 1) % DEVICES
        self.engine.fire(self.paths[index], "error", ERROR)

    def round(self, seconds: float) -> float:
        rate = measure(self.fire, seconds)
        self.store.flush()  # the writer catches up between rounds, not during the other side's
        return rate

    def close(self) -> None:
        if self.host is not None:
            self.host.stop()
        self.engine.close()
        self.store.stop()


FAULTS = """
templates:
  faulty:
    events:
      fault:
        level: WARNING
        persistent: true
        {key}
        format:
          fields:
            - {{name: code, type: string}}
            - {{name: message, type: string}}
contexts:
  things:
    child_templates: [standard, faulty]
"""
FAULT = {"code": "E42", "message": "motor overload"}


class AlarmSide:
    """An engine on its own SQLite history firing ``fault`` round robin into 1,000 contexts; with
    ``reduced`` the definition has a reduction_key and the server's alarm list is attached."""

    def __init__(self, directory: Path, name: str, *, reduced: bool) -> None:
        key = 'reduction_key: "{context}:{name}:{data.code}"' if reduced else ""
        (directory / f"{name}.yaml").write_text(FAULTS.format(key=key))
        catalog = load_contexts([shipped_contexts(), directory / f"{name}.yaml"])
        self.store = SqlHistoryStore(f"sqlite:///{directory / f'{name}.sqlite3'}")
        self.engine = Engine.from_catalog(catalog, history=self.store)
        self.alarms = (
            Alarms(self.engine, self.store, HistoryAccess(self.engine.tree, self.store)) if reduced else None
        )
        self.store.start()
        self.paths = [f"things.t{i}" for i in range(DEVICES)]
        for path in self.paths:
            self.engine.add_context(path)
        if self.alarms is not None:
            self.alarms.start()
        self._next = 0

    def fire(self) -> None:
        index = self._next
        self._next = (index + 1) % DEVICES
        self.engine.fire(self.paths[index], "fault", FAULT)

    def round(self, seconds: float) -> float:
        rate = measure(self.fire, seconds)
        self.store.flush()
        return rate

    def close(self) -> None:
        if self.alarms is not None:
            self.alarms.stop()
        self.engine.close()
        self.store.stop()


def alarm_reduction(directory: Path, seconds: float, rounds: int) -> tuple[dict[str, float], int, int]:
    reduced, plain = (
        AlarmSide(directory, "reduced", reduced=True),
        AlarmSide(directory, "unreduced", reduced=False),
    )
    try:
        found = best(
            {"reduced": lambda: reduced.round(seconds), "plain": lambda: plain.round(seconds)}, rounds
        )
        assert reduced.alarms is not None
        alarms = reduced.alarms.store.by_keys(f"{path}:fault:E42" for path in reduced.paths)
        assert len(alarms) == DEVICES, f"{len(alarms)} alarms, expected {DEVICES}"
        return found, len(alarms), sum(alarm.count for alarm in alarms)
    finally:
        reduced.close()
        plain.close()


def count_rules(seconds: float, rounds: int) -> tuple[str, float, float]:
    with tempfile.TemporaryDirectory(prefix="lsbench-alarms-") as folder:
        directory = Path(folder)
        ruled, plain = Side(directory, "ruled"), Side(directory, "plain")
        try:
            ruled.with_count_rules()
            found = best(
                {"rules": lambda: ruled.round(seconds), "none": lambda: plain.round(seconds)}, rounds
            )
            assert ruled.host is not None
            status = ruled.host.status()
            assert len(status) == DEVICES
            opened = sum(len(rule["state"]["open"]) for rule in status)
            counted = sum(sum(rule["state"]["counting"].values()) for rule in status)
            assert counted, "the rules saw no events"
        finally:
            ruled.close()
            plain.close()
    print(
        f"persistent fire into {DEVICES} devices: with {DEVICES} count rules "
        f"{found['rules']:>10,.0f} fires/s "
        f"({opened} alerts open at the end)   without rules {found['none']:>10,.0f} fires/s"
    )
    return ("count_rules", found["rules"] / found["none"], 0.7)


def reduction(seconds: float, rounds: int) -> tuple[str, float, float]:
    with tempfile.TemporaryDirectory(prefix="lsbench-alarms-") as folder:
        found, active, folded = alarm_reduction(Path(folder), seconds, rounds)
    print(
        f"persistent fire into {DEVICES} contexts: reduced into {active} active alarms "
        f"{found['reduced']:>10,.0f} fires/s ({folded:,} events folded)   "
        f"without reduction {found['plain']:>10,.0f} fires/s"
    )
    return ("alarm_reduction", found["reduced"] / found["plain"], 0.7)


PARTS = {"count_rules": count_rules, "alarm_reduction": reduction}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a fraction of a second")
    parser.add_argument("--part", choices=sorted(PARTS), help="run one goal only (both by default)")
    args = parser.parse_args()
    seconds, rounds = (0.05, 1) if args.quick else (1.0, 5)
    goals = [run(seconds, rounds) for name, run in PARTS.items() if args.part in (None, name)]
    for name, ratio, target in goals:
        print(f"goal {name}: {ratio:.2f}x (target >= {target:.2f}x) {'ok' if ratio >= target else 'short'}")


if __name__ == "__main__":
    main()
