#!/usr/bin/env python3
"""Fire rate of non-persistent events vs blinker, measured in one run.

LinkServer fires a 3-field event (resolving context and definition,
validating the data table, assigning an id and notifying synchronous
listeners); blinker's ``Signal.send`` passes the same three values to its
receivers. Goals: LinkServer >= 0.5x blinker with 1 listener, >= 1.0x with 10.

    python tools/bench/fire.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import time

import blinker

from linkserver.core.definitions import EventDefinition
from linkserver.core.formats import Field, TableFormat
from linkserver.testing import engine_with

READING = TableFormat(
    fields=[
        Field(name="quantity", type="string"),
        Field(name="value", type="float"),
        Field(name="unit", type="string"),
    ]
)
DATA = {"quantity": "temperature", "value": 21.5, "unit": "degC"}


def rate(call, seconds: float) -> float:
    """Calls per second of ``call``, best of three rounds of about ``seconds`` each."""
    best = 0.0
    batch = 1000
    for _ in range(3):
        gc.collect()
        count = 0
        started = time.perf_counter()
        while True:
            for _ in range(batch):
                call()
            count += batch
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        best = max(best, count / elapsed)
    return best


def linkserver_rate(listeners: int, seconds: float) -> float:
    engine = engine_with(
        {"devices": []},
        templates={"device": [EventDefinition(name="measurement", format=READING)]},
        child_templates={"devices": "device"},
    )
    engine.add_context("devices.plc7")
    received = [0]

    def listener(event):
        received[0] += 1

    for _ in range(listeners):
        engine.listen("devices.*", "measurement", listener)
    fire = engine.fire
    result = rate(lambda: fire("devices.plc7", "measurement", DATA), seconds)
    assert received[0] > 0
    return result


def blinker_rate(receivers: int, seconds: float) -> float:
    signal = blinker.Signal()
    received = [0]
    keep = []
    for _ in range(receivers):

        def receiver(sender, **data):
            received[0] += 1

        keep.append(receiver)
        signal.connect(receiver)
    send = signal.send
    result = rate(lambda: send("devices.plc7", **DATA), seconds)
    assert received[0] > 0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a fraction of a second")
    args = parser.parse_args()
    seconds = 0.05 if args.quick else 1.0
    goals = []
    for listeners, target in ((1, 0.5), (10, 1.0)):
        ours = linkserver_rate(listeners, seconds)
        theirs = blinker_rate(listeners, seconds)
        print(
            f"{listeners:>2} listener(s): linkserver {ours:>10,.0f} fires/s"
            f"   blinker {theirs:>10,.0f} sends/s"
        )
        goals.append((f"fire_{listeners}_listener{'s' if listeners > 1 else ''}", ours / theirs, target))
    for name, ratio, target in goals:
        verdict = "ok" if ratio >= target else "short"
        print(f"goal {name}: {ratio:.2f}x (target >= {target:.2f}x) {verdict}")


if __name__ == "__main__":
    main()
