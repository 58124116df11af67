#!/usr/bin/env python3
"""Where node to node's time goes: timestamps along the path of each event, many events.

Not a benchmark (no goal): node A here and node B in a process of its own, as
``bus.py --part node`` runs them, with perf_counter stamps (the machine's
monotonic clock, one for every process) at each hand-off:

    fire   the firer, just before ``fire``
    (persistent events are published at fire time, before their commit: pub to got is the
    path to B; take, commit and done are node A's commit beside it)
    take   the committer took the event's batch (writer thread or waiting caller)
    commit the batch's statement returned (committed)
    pub    the outbound handed it to the bridge (``publish``: encoding next)
    pubret ``publish`` returned (encoded, the connection's thread woken)
    done   the committer finished the batch (futures completed)
    io     the connection's thread took the messages
    sent   the connection's thread wrote it (``basic_publish`` returned)
    recv   B's connection thread got the message
    got    B's listener was called

Per stage: p50, p90, p99 and the mean of the stage over the slowest 1% of
events end to end (which stages make the tail); how often the writer thread
lingered for a batch; the commits over 10 ms, each with the other statements
node A had at the database meanwhile (SQLAlchemy's, timed: the outbox's
deletes, leases, ...). ``--no-durable`` leaves out node A's durable listener
(bus.py's measure of A's commit), ``--switch`` sets A's GIL switch interval.

    python tools/bench/trace_node.py [--seconds 20] [--name reading|tick] [--postgres-url URL]
                                     [--no-durable] [--switch SECONDS]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bus  # noqa: E402

STAMPS: dict[int, dict[str, float]] = {}
LINGERS: list[float] = []
CALLS: list[float] = []


def stamp(event_id: int, where: str, at: float) -> None:
    STAMPS.setdefault(event_id, {})[where] = at


def patch_a() -> None:
    from linkserver.bridges.amqp import AmqpBridge
    from linkserver.history.writer import Writer

    process, write = Writer._process, Writer._write

    def traced_process(self: Any, batch: Any, **options: Any) -> bool:
        now = time.perf_counter()
        for item in batch:
            if item[1] is not None:
                stamp(item[1].id, "take", now)
        result = process(self, batch, **options)
        now = time.perf_counter()
        for item in batch:
            if item[1] is not None:
                stamp(item[1].id, "done", now)
        return result

    def traced_write(self: Any, rows: Any, items: Any, **options: Any) -> None:
        write(self, rows, items, **options)
        now = time.perf_counter()
        for item in items:
            if item[1] is not None:
                stamp(item[1].id, "commit", now)

    publish, send = AmqpBridge.publish, AmqpBridge._send

    def traced_publish(self: Any, events: Any) -> None:
        now = time.perf_counter()
        for event in events:
            stamp(event.id, "pub", now)
        publish(self, events)
        now = time.perf_counter()
        for event in events:
            stamp(event.id, "pubret", now)

    def traced_send(self: Any, messages: Any) -> None:
        now = time.perf_counter()
        for message in messages:
            stamp(message[0], "io", now)
        send(self, messages)
        now = time.perf_counter()
        for message in messages:
            stamp(message[0], "sent", now)

    Writer._process, Writer._write = traced_process, traced_write  # type: ignore[method-assign]
    from linkserver.bridges.amqp_connection import Connector

    call = Connector.call

    def traced_call(self: Any, callback: Any) -> bool:
        CALLS.append(time.perf_counter())
        result = call(self, callback)
        CALLS.append(time.perf_counter())
        return result

    Connector.call = traced_call  # type: ignore[method-assign]
    from linkserver.history.writer import WriteQueue

    dense = WriteQueue._dense

    def traced_dense(self: Any, linger: float) -> bool:
        result = dense(self, linger)
        if result:
            LINGERS.append(time.perf_counter())
        return result

    WriteQueue._dense = traced_dense  # type: ignore[method-assign]
    AmqpBridge.publish, AmqpBridge._send = traced_publish, traced_send  # type: ignore[method-assign]


SQL: list[tuple[float, float, str, str]] = []  # (start, seconds, thread, statement) besides the writer's


def patch_sql() -> None:
    """Every SQLAlchemy statement of node A's other threads, timed (the writer's own bypass it)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["started"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started = conn.info.pop("started", None)
        if started is not None:
            name = threading.current_thread().name
            SQL.append((started, time.perf_counter() - started, name, " ".join(statement.split())[:90]))


GCS: list[tuple[float, float, int]] = []  # (start, seconds, generation) of node A's collections


def patch_gc() -> None:
    import gc

    started: list[float] = []

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            GCS.append((started[0], time.perf_counter() - started[0], info["generation"]))

    gc.callbacks.append(timed)


def child(tmp: str, url: str, exchange: str, database_url: str) -> int:
    """Node B: one line per delivered event: name id recv got."""
    import logging
    import signal

    from linkserver.bridges.amqp_cluster import ClusterConsumer

    logging.basicConfig(level=logging.ERROR)
    received: dict[str, float] = {}
    message = ClusterConsumer._message

    def traced_message(self: Any, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        received[properties.message_id] = time.perf_counter()
        message(self, channel, method, properties, body)

    ClusterConsumer._message = traced_message  # type: ignore[method-assign]
    lock = threading.Lock()

    def got(event: Any) -> None:
        now = time.perf_counter()
        recv = received.pop(str(event.id), now)
        with lock:
            sys.stdout.write(f"{event.name} {event.id} {recv!r} {now!r} {event.data[0]['sent']!r}\n")
            sys.stdout.flush()

    node = bus.make_node(Path(tmp), "b", url, exchange, database_url)
    cluster = node.cluster
    assert cluster is not None
    bus.wait_until(lambda: cluster.connected, 30, "node B to connect")
    node.listen("bench", "*", got)
    bus.settle()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    node.stop()
    return 0


class TracedReceiver(bus.Receiver):
    def command(self, args: tuple[str, ...]) -> list[str]:
        """This script's traced node B instead of bus.py's receiver."""
        return [sys.executable, str(Path(__file__).resolve()), "--child", *args[1:]]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            name, event_id, recv, got, sent = line.split()
            stamp(int(event_id), "recv", float(recv))
            stamp(int(event_id), "got", float(got))
            stamp(int(event_id), "fire", float(sent))
            with self.arrived:
                self.got.setdefault(name, []).append(float(got) - float(sent))
                self.arrived.notify_all()


STAGES = ("fire", "take", "commit", "pub", "io", "sent", "recv", "got")


def analyse(ids: list[int], stages: tuple[str, ...]) -> None:
    rows = [STAMPS[i] for i in ids if all(s in STAMPS.get(i, {}) for s in stages)]
    if not rows:
        print("no complete traces", flush=True)
        return
    total = sorted(rows, key=lambda r: r[stages[-1]] - r[stages[0]])
    tail = total[int(len(total) * 0.99) :]
    print(f"{len(rows)} events traced; slowest 1%: {len(tail)} events", flush=True)
    print(f"{'stage':>14} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'tail mean':>10}", flush=True)
    for a, b in [*zip(stages, stages[1:], strict=False), (stages[0], stages[-1])]:
        deltas = sorted((r[b] - r[a]) * 1e6 for r in rows)
        mean_tail = sum((r[b] - r[a]) * 1e6 for r in tail) / len(tail)
        n = len(deltas)
        print(
            f"{a + '>' + b:>14} {deltas[n // 2]:8.0f} {deltas[int(n * 0.9)]:8.0f} "
            f"{deltas[min(n - 1, int(n * 0.99))]:8.0f} {mean_tail:10.0f}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--name", default="reading", choices=("reading", "tick"))
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "LINKSERVER_BENCH_POSTGRES_URL", os.environ.get("LINKSERVER_TEST_POSTGRES_URL")
        ),
    )
    parser.add_argument("--child", nargs=4)
    parser.add_argument("--no-freeze", action="store_true", help="no gc.freeze() in node A (bus.settle)")
    parser.add_argument("--no-durable", action="store_true", help="no durable listener on A")
    parser.add_argument("--switch", type=float, help="sys.setswitchinterval in node A")
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    import logging

    logging.basicConfig(level=logging.ERROR)
    patch_a()
    patch_sql()
    patch_gc()
    if args.switch:
        sys.setswitchinterval(args.switch)
    bus.Receiver = TracedReceiver  # type: ignore[misc]
    if args.no_durable:
        from linkserver.server.app import LinkServer

        listen = LinkServer.listen

        def listen_not_durable(self: Any, *a: Any, durable: bool = False, **k: Any) -> Any:
            if durable:
                return None
            return listen(self, *a, **k)

        LinkServer.listen = listen_not_durable  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="linkserver-trace-") as scratch:
        tmp = Path(scratch)
        with bus.cluster_database(args.postgres_url, tmp) as (database_url, _kind):
            nodes = bus.NodePath(args.amqp_url, tmp, database_url)
            if not args.no_freeze:
                bus.settle()
            GCS.clear()
            try:
                STAMPS.clear()
                nodes.measure(args.name, bus.NODE_RATE, args.seconds)
                time.sleep(0.5)
            finally:
                nodes.close()
    ids = [i for i, s in STAMPS.items() if "got" in s]
    print(f"the writer lingered {len(LINGERS)} times", flush=True)
    long_gcs = sorted((round(took * 1000, 1), generation) for _, took, generation in GCS if took > 0.002)
    print(f"node A's collections over 2 ms (ms, generation): {long_gcs}", flush=True)
    slow = sorted(
        (s["take"], s["commit"] - s["take"]) for s in STAMPS.values() if "commit" in s and "take" in s
    )
    if slow:
        first = slow[0][0]
        late = [(t, d) for t, d in slow if d > 0.01]
        listed = [(round(t - first, 3), round(d * 1000, 1)) for t, d in late]
        print(f"commits over 10 ms (s from the first, ms): {listed}", flush=True)
        for t, d in late:  # what else node A had at the database meanwhile, and its collections
            for started, took, generation in GCS:
                if started < t + d and started + took > t - 0.05 and took > 0.001:
                    print(
                        f"  at {started - first:.3f} s for {took * 1000:.1f} ms: gc gen {generation}",
                        flush=True,
                    )
            for started, took, name, statement in SQL:
                if started < t + d and started + took > t - 0.05:
                    print(
                        f"  at {started - first:.3f} s for {took * 1000:.1f} ms, {name}: {statement}",
                        flush=True,
                    )
    spans = sorted((b - a) * 1e6 for a, b in zip(CALLS[::2], CALLS[1::2], strict=False))
    if spans:
        n = len(spans)
        print(f"Connector.call: p50 {spans[n // 2]:.0f} us, p90 {spans[int(n * 0.9)]:.0f} us", flush=True)
    # Persistent events too are published at fire time (before their commit): one path for both.
    analyse(ids, ("fire", "pub", "io", "sent", "recv", "got"))
    if args.name == "reading":
        analyse(ids, ("fire", "take", "commit", "done"))  # node A's commit, beside the path
    return 0


if __name__ == "__main__":
    sys.exit(main())
