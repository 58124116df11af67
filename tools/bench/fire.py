#!/usr/bin/env python3
"""Fire cost vs blinker and pyee, measured in one run.

Three goals, each side in the same process, rounds interleaved, best round:

1. ``persistent_fire_1_listener`` (>= 0.5x): LinkServer fires the shipped
   ``measurement`` event (devices.yaml: persistent, a 3-field record with a
   pattern and a default) into a device context with one synchronous
   listener, on a SqlHistoryStore (SQLite, default settings): resolve the
   context and definition, validate the data table, assign id and times,
   queue the event for history, call the listener. The baseline is
   blinker's ``Signal.send`` of the same three values to one receiver, which
   stores nothing. What is compared is the cost on the firer's thread: CPU
   time of the firing thread per fire (``time.thread_time``) vs per send. The
   history write itself (row and JSON encoding, the commit) happens on the
   writer's thread and is not in this figure: the durable goals of
   tools/bench/durable.py and tools/bench/history.py measure it. The wall-clock
   rates of both are printed too.
2. ``nonpersistent_fire_1_listener`` (>= 1.0x): the same lifecycle for a
   non-persistent 3-field event (one record: quantity, value, unit; nothing
   stored), one listener, vs blinker's send of the three values to one
   receiver: calls per second of wall-clock time.
3. ``fire_10_listeners`` (>= 0.7x): the non-persistent fire with 10
   synchronous listeners vs pyee's ``EventEmitter.emit`` of the path and
   the data to 10 listeners (pyee is the faster of the two peers with many
   receivers; blinker's figure is printed for reference).
4. ``state_transition`` (>= 0.5x): a requested transition of a device's state
   machine through the engine's API (``server.resources.transition``: find the
   machine and the transition from the current state, fire ``stateChanged``,
   write the new state in the event's commit) vs a plain fire of the same
   ``stateChanged`` event with the same data, on one LinkServer with SQLite
   history: calls per second of wall-clock time, each round ending when
   history committed what it fired (the state rows are in that commit).

    python tools/bench/fire.py [--quick] [--only GOAL]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blinker
import pyee

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from linkserver.core.definitions import EventDefinition  # noqa: E402
from linkserver.core.formats import Field, TableFormat  # noqa: E402
from linkserver.history.sql import SqlHistoryStore  # noqa: E402
from linkserver.loading import load_contexts  # noqa: E402
from linkserver.server.engine import Engine  # noqa: E402
from linkserver.testing import engine_with  # noqa: E402

READING = TableFormat(
    fields=[
        Field(name="quantity", type="string"),
        Field(name="value", type="float"),
        Field(name="unit", type="string"),
    ]
)
VALUES = {"quantity": "temperature", "value": 21.5, "unit": "degC"}
MEASUREMENT = [VALUES]  # the shipped measurement event holds a list of records
DEVICE = "devices.plc7"


def shipped_contexts() -> Path:
    for candidate in (ROOT / "contexts", ROOT / "linkserver" / "defaults" / "contexts"):
        if (candidate / "devices.yaml").exists():
            return candidate
    raise SystemExit("cannot find the shipped contexts (devices.yaml)")


def measure(call: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(calls per wall-clock second, calls per CPU second of this thread) over about ``seconds``."""
    batch = 1000
    count = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    while True:
        for _ in range(batch):
            call()
        count += batch
        elapsed = time.perf_counter() - wall
        if elapsed >= seconds:
            break
    return count / elapsed, count / max(time.thread_time() - cpu, 1e-9)


def best(sides: dict[str, Callable[[], tuple[float, float]]], rounds: int) -> dict[str, tuple[float, float]]:
    """The best wall-clock and the best CPU rate of each side over interleaved rounds."""
    found = {name: (0.0, 0.0) for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            wall, cpu = run()
            found[name] = (max(found[name][0], wall), max(found[name][1], cpu))
    return found


def counting_listener(counter: list[int]) -> Callable[..., None]:
    def listener(*args: object, **kwargs: object) -> None:
        counter[0] += 1

    return listener


def blinker_send(receivers: int) -> tuple[Callable[[], object], list[int], list[object]]:
    signal = blinker.Signal()
    counter = [0]
    keep = [counting_listener(counter) for _ in range(receivers)]  # blinker holds receivers weakly
    for receiver in keep:
        signal.connect(receiver)
    send = signal.send
    return (lambda: send(DEVICE, **VALUES)), counter, keep


def pyee_emit(listeners: int) -> tuple[Callable[[], object], list[int]]:
    emitter = pyee.EventEmitter()
    counter = [0]
    for _ in range(listeners):
        emitter.on("measurement", counting_listener(counter))
    emit = emitter.emit
    return (lambda: emit("measurement", DEVICE, VALUES)), counter


def nonpersistent_engine(listeners: int) -> tuple[Engine, list[int]]:
    engine = engine_with(
        {"devices": []},
        templates={"device": [EventDefinition(name="measurement", format=READING)]},
        child_templates={"devices": "device"},
    )
    engine.add_context(DEVICE)
    counter = [0]
    for _ in range(listeners):
        engine.listen("devices.*", "measurement", counting_listener(counter))
    return engine, counter


def state_transition(seconds: float, rounds: int) -> tuple[str, float, float]:
    """Goal 4: transitions vs plain fires of the same stateChanged event (see the docstring)."""
    from linkserver.loading import ServerConfig, load_all
    from linkserver.server.app import LinkServer

    with tempfile.TemporaryDirectory(prefix="lsbench-transition-") as directory:
        url = f"sqlite:///{Path(directory) / 'history.sqlite3'}"
        config = ServerConfig.default(data_dir=directory, database_url=url)
        server = LinkServer(config, load_all()[1]).start()
        try:
            moving, plain = "devices.bench_moving", "devices.bench_plain"
            for path in (moving, plain):
                server.engine.add_context(path)
            transition, fire, flush = server.resources.transition, server.engine.fire, server.history.flush
            transition(moving, action="connect", by="bench")
            actions = itertools.cycle(("degrade", "recover"))  # online <-> degraded, every one allowed
            data = {"old": "online", "new": "degraded", "cause": "action degrade", "by": "bench"}

            def rate(call: Callable[[], object]) -> tuple[float, float]:
                count, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    for _ in range(200):
                        call()
                    count += 200
                flush(30)  # what was fired is committed (with the state rows) inside the time
                return count / (time.perf_counter() - start), 0.0

            found = best(
                {
                    "transition": lambda: rate(lambda: transition(moving, action=next(actions), by="bench")),
                    "fire": lambda: rate(lambda: fire(plain, "stateChanged", data, author="bench")),
                },
                rounds,
            )
            assert server.resources.state(moving) in ("online", "degraded")
        finally:
            server.stop("benchmark over")
    ours, theirs = found["transition"][0], found["fire"][0]
    print(
        f"state transition (SQLite): linkserver {ours:>10,.0f} transitions/s   "
        f"plain fire {theirs:>10,.0f} fires/s"
    )
    return "state_transition", ours / theirs, 0.5


def persistent_fire(seconds: float, rounds: int) -> tuple[str, float, float]:
    """Goal 1: persistent, 1 listener, CPU of the firing thread (see the docstring)."""
    with tempfile.TemporaryDirectory(prefix="lsbench-fire-") as directory:
        store = SqlHistoryStore(f"sqlite:///{Path(directory) / 'history.sqlite3'}")
        engine = Engine.from_catalog(load_contexts([shipped_contexts()]), history=store)
        store.start()
        try:
            engine.add_context(DEVICE)
            counter = [0]
            engine.listen("devices.*", "measurement", counting_listener(counter))
            fire = engine.fire

            def persistent() -> tuple[float, float]:
                result = measure(lambda: fire(DEVICE, "measurement", MEASUREMENT), seconds)
                store.flush()  # the writer catches up between rounds, not during the other side's
                return result

            send, sent, _keep = blinker_send(1)
            found = best({"linkserver": persistent, "blinker": lambda: measure(send, seconds)}, rounds)
            assert counter[0] and sent[0] and store.writer_stats.events >= counter[0]
        finally:
            engine.close()
            store.stop()
    (ours_wall, ours_cpu), (theirs_wall, theirs_cpu) = found["linkserver"], found["blinker"]
    print(
        f"persistent fire, 1 listener: linkserver {ours_cpu:>10,.0f} fires per firer-CPU-second "
        f"({ours_wall:,.0f}/s wall clock, the writer thread sharing the GIL)   "
        f"blinker {theirs_cpu:>10,.0f} sends per CPU second ({theirs_wall:,.0f}/s)"
    )
    return "persistent_fire_1_listener", ours_cpu / theirs_cpu, 0.5


def nonpersistent_fire(seconds: float, rounds: int) -> tuple[str, float, float]:
    """Goal 2: non-persistent, 1 listener (see the docstring)."""
    engine, counter = nonpersistent_engine(1)
    fire = engine.fire
    send, sent, _keep = blinker_send(1)
    found = best(
        {
            "linkserver": lambda: measure(lambda: fire(DEVICE, "measurement", VALUES), seconds),
            "blinker": lambda: measure(send, seconds),
        },
        rounds,
    )
    assert counter[0] and sent[0]
    print(
        f"non-persistent fire, 1 listener: linkserver {found['linkserver'][0]:>10,.0f} fires/s   "
        f"blinker {found['blinker'][0]:>10,.0f} sends/s"
    )
    return "nonpersistent_fire_1_listener", found["linkserver"][0] / found["blinker"][0], 1.0


def fire_10_listeners(seconds: float, rounds: int) -> tuple[str, float, float]:
    """Goal 3: non-persistent, 10 listeners (see the docstring)."""
    engine, counter = nonpersistent_engine(10)
    fire = engine.fire
    emit, emitted = pyee_emit(10)
    send, sent, _keep = blinker_send(10)
    found = best(
        {
            "linkserver": lambda: measure(lambda: fire(DEVICE, "measurement", VALUES), seconds),
            "pyee": lambda: measure(emit, seconds),
            "blinker": lambda: measure(send, seconds),
        },
        rounds,
    )
    assert counter[0] and emitted[0] and sent[0]
    print(
        f"non-persistent fire, 10 listeners: linkserver {found['linkserver'][0]:>10,.0f} fires/s   "
        f"pyee {found['pyee'][0]:>10,.0f} emits/s   blinker {found['blinker'][0]:>10,.0f} sends/s"
    )
    return "fire_10_listeners", found["linkserver"][0] / found["pyee"][0], 0.7


GOALS: dict[str, Callable[[float, int], tuple[str, float, float]]] = {
    "persistent_fire_1_listener": persistent_fire,
    "nonpersistent_fire_1_listener": nonpersistent_fire,
    "fire_10_listeners": fire_10_listeners,
    "state_transition": state_transition,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a fraction of a second")
    parser.add_argument("--only", choices=sorted(GOALS), help="run this goal alone")
    args = parser.parse_args()
    seconds, rounds = (0.05, 1) if args.quick else (0.5, 5)
    goals = [run(seconds, rounds) for name, run in GOALS.items() if args.only in (None, name)]
    for name, ratio, target in goals:
        print(f"goal {name}: {ratio:.2f}x (target >= {target:.2f}x) {'ok' if ratio >= target else 'short'}")


if __name__ == "__main__":
    main()
