#!/usr/bin/env python3
"""The event bus: the AMQP bridge next to raw pika, measured in the same run.

1. Outbound (goal ``bridge_outbound_vs_pika`` >= 0.80x): one thread fires N
   persistent ``measurement`` events into a LinkServer on SQLite whose AMQP
   bridge publishes them to a topic exchange of the local RabbitMQ with a
   durable queue bound to it; the time runs from the first fire until the
   last event is committed AND confirmed by RabbitMQ (the outbox is empty).
   Next to it, raw pika (BlockingConnection, its async channel underneath)
   publishes the same CloudEvents bodies, persistent, to the same exchange
   with publisher confirms, ``WINDOW`` batches of ``BATCH`` in flight: the
   strongest simple pika publisher. Best of ROUNDS each side, the rounds in
   turn (ours, pika, ours, ...: a change of the machine's load falls on
   both), the queue purged before each; the process freezes the server's
   start-up objects first (:func:`settle`), as the drain's does.
2. Outbox drain (goal ``outbox_drain_vs_steady`` >= 0.80x): the bridge
   reaches RabbitMQ through a TCP proxy on a loopback port (RabbitMQ itself
   keeps running for everybody else). Events are fired at RATE per second
   throughout; the proxy cuts the bridge off for OUTAGE seconds, so the events
   pile up in the outbox (most of them in the table only: the memory buffer
   holds 10,000), then lets it through again. The bridge finds the broker
   back at its next connection attempt (its retry back-off, at most 5 s,
   printed); the drain rate is what the bridge published from then until the
   outbox was empty, per second: memory buffer, table pages read, confirmed
   rows deleted, all with the firer still going. The steady-state rate is
   the same bridge's own throughput with the broker up, through the same
   proxy, fires included (as part 1 measures it: a burst of events fired at
   once until all are confirmed), measured just before the outage and just
   after the drain, their mean: a machine whose load changes during the
   run moves both sides. So the goal asks that catching up from the table
   runs nearly as fast as the live path. Both sides publish persistent
   messages with confirms. A consumer in a process of its own
   (:class:`IdConsumer`) takes the queue's messages throughout, as the
   bridge's consumers would, so every phase publishes into a queue that
   is nearly empty: RabbitMQ confirms more slowly into a deep one (raw pika,
   10,000 confirmed messages: 10,271 and 10,775/s into an empty queue,
   8,192 and 7,172/s into one holding 90,000; until 2026-12-03 nobody
   consumed it and the burst after the drain met 80,000 messages, the one
   before none). Every event fired must arrive (checked by message id).

3. Node to node (goal ``node_to_node_p99`` <= 2.00x): two cluster nodes
   (docs/cluster.md), A in this process and B in a process of its own, on one
   history (PostgreSQL with ``--postgres-url`` or $LINKSERVER_BENCH_POSTGRES_URL /
   $LINKSERVER_TEST_POSTGRES_URL, a schema of its own; else SQLite) and the
   cluster exchange of the local RabbitMQ. Node A fires persistent events at
   NODE_RATE per second for WINDOW_S seconds; a listener on node B takes the
   time from just before the fire to its delivery on B (published by A at
   fire time, persistent, before its commit, as A's own subscribers get it;
   stored by A in one round trip with its outbox row, which is deleted once
   the commit and RabbitMQ's confirm both came; consumed by B, delivered by
   B's engine). Next to it, raw pika at the same rate: one connection here
   publishes persistent messages (``delivery_mode`` 2) of the same size to a
   durable topic exchange and queue, with publisher confirms as node A's
   publisher (not waited for in the publish, as A's fire does not wait:
   :class:`PikaPath`), another in a process of its own consumes them; the
   time from just before the publish to the consumer's callback. Neither
   side waits for a disk before the message is consumed: RabbitMQ hands a
   persistent message on before it is on disk, and A publishes before its
   commit. The raw psycopg lines (:class:`RawCommitPath`,
   printed, not a goal) show what waiting for the commit first would cost:
   the commit alone, and the same commit followed in the same thread by the
   same pika publish, to its consume (how node A published persistent events
   until 2026-12-03, with no server in between; see docs/performance.md).
   Both clocks are the machine's monotonic clock, one for every
   process. The paths are measured in turn in slices
   of SLICE_SECONDS (ours, pika, ours non-persistent, raw psycopg, ours,
   ...), so a change of the machine's load falls on all of them; p99 of each
   over all its slices, the goal their ratio. Printed too: the
   non-persistent path (published at once, no commit), node A's own commit
   (fire to its durable listener), the same persistent events to a durable
   listener on node B (held there until A's commit notice) and the p50s. Each process freezes what it
   made while starting out of the collector's full passes before it measures,
   as ``linkserver serve`` does once it is up (:func:`settle`): a full pass
   over an unfrozen node took 50-110 ms, every thread stopped.

    python tools/bench/bus.py [--quick] [--amqp-url amqp://guest:guest@127.0.0.1:5672/]
                              [--events N] [--outage S] [--rate R] [--window S]
                              [--part outbound|drain|node ...] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
from pika.spec import Basic  # noqa: E402

from linkserver.bridges.amqp import AmqpBridge  # noqa: E402
from linkserver.core.cloudevents import CONTENT_TYPE, encode  # noqa: E402
from linkserver.loading import ServerConfig, load_all  # noqa: E402
from linkserver.server.app import LinkServer  # noqa: E402
from linkserver.server.cluster_wire import encode_event  # noqa: E402
from linkserver.server.outbound import Select  # noqa: E402
from linkserver.testing_proxy import TcpProxy  # noqa: E402

CONTEXT = "devices.bench"
BATCH, WINDOW = 100, 10
SETTINGS = {  # events per outbound round, rounds, outage seconds, rate during the drain test
    "quick": (2_000, 1, 1.0, 1000),  # the smoke test's: every path once, no figure to trust
    "full": (30_000, 3, 60.0, 1000),
}
TARGET = 0.80
NODE_RATE = 100  # events per second, node to node
NODE_WINDOW = {"quick": 1.0, "full": 30.0}  # seconds of firing per side
NODE_TARGET = 2.0
SLICE_SECONDS = 2.0  # the window is cut in slices this long, the paths measured in turn
PARTS = ("outbound", "drain", "node")
BENCH_CONTEXTS = """
contexts:
  bench:
    description: The node-to-node benchmark's events.
    events:
      reading:
        description: Persistent.
        persistent: true
        expiration: 1d
        format: {fields: [{name: sent, type: float, description: perf_counter at the fire}]}
      tick:
        description: Not persistent.
        persistent: false
        format: {fields: [{name: sent, type: float, description: perf_counter at the fire}]}
"""


def record(value: float) -> list[dict[str, Any]]:
    return [{"quantity": "temperature", "value": value, "unit": "degC"}]


def goal(name: str, ratio: float, detail: str = "") -> None:
    verdict = "ok" if ratio >= TARGET else "short"
    print(f"goal {name}: {ratio:.2f}x{detail} (target >= {TARGET:.2f}x) {verdict}", flush=True)


class Rabbit:
    """The test's own view of RabbitMQ: a topic exchange with a durable queue bound to all of it."""

    def __init__(self, url: str) -> None:
        self.url = url
        parameters = pika.URLParameters(url)
        parameters.heartbeat = 0  # idle through a whole outage: RabbitMQ must not drop it meanwhile
        self.connection = pika.BlockingConnection(parameters)
        self.channel = self.connection.channel()
        self.exchange = f"linkserver-bench-{uuid.uuid4().hex[:8]}"
        self.queue = self.exchange + "-q"
        self.channel.exchange_declare(self.exchange, "topic", durable=True)
        self.channel.queue_declare(self.queue, durable=True)
        self.channel.queue_bind(self.queue, self.exchange, "#")

    def purge(self) -> None:
        self.channel.queue_purge(self.queue)

    def count(self) -> int:
        return self.channel.queue_declare(self.queue, durable=True, passive=True).method.message_count

    def close(self) -> None:
        self.channel.queue_delete(self.queue)
        self.channel.exchange_delete(self.exchange)
        self.connection.close()


class PikaPublisher:
    """Raw pika: the same bodies, persistent, publisher confirms, WINDOW batches of BATCH in flight."""

    def __init__(self, rabbit: Rabbit) -> None:
        self.rabbit = rabbit
        self.connection = pika.BlockingConnection(pika.URLParameters(rabbit.url))
        channel = self.connection.channel()
        self.impl = channel._impl  # the async channel: publish without waiting, confirms in bulk
        self.state = {"acked": 0, "nacked": 0, "ready": False}
        self.tag = 0
        state = self.state

        def on_confirm(frame: Any) -> None:
            if isinstance(frame.method, Basic.Nack):
                state["nacked"] += 1
            state["acked"] = max(state["acked"], frame.method.delivery_tag)

        self.impl.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _: state.update(ready=True))
        while not state["ready"]:
            self.connection.process_data_events(time_limit=0.1)

    def round(self, bodies: list[tuple[str, bytes, str]]) -> float:
        """One round: messages per second, confirmed."""
        connection, impl, state, rabbit = self.connection, self.impl, self.state, self.rabbit
        rabbit.purge()
        sent_tags: list[int] = []
        tag = self.tag
        started = time.perf_counter()
        for start in range(0, len(bodies), BATCH):
            for key, body, message_id in bodies[start : start + BATCH]:
                properties = pika.BasicProperties(
                    delivery_mode=2, content_type=CONTENT_TYPE, message_id=message_id
                )
                impl.basic_publish(rabbit.exchange, key, body, properties, mandatory=True)
            tag += len(bodies[start : start + BATCH])
            sent_tags.append(tag)
            if len(sent_tags) >= WINDOW:
                wait = sent_tags.pop(0)
                while state["acked"] < wait:
                    connection.process_data_events(time_limit=0.01)
        while state["acked"] < tag:
            connection.process_data_events(time_limit=0.01)
        self.tag = tag
        if state["nacked"]:
            raise SystemExit(f"rabbitmq refused {state['nacked']} messages")
        return len(bodies) / (time.perf_counter() - started)

    def close(self) -> None:
        self.connection.close()


def make_server(tmp: Path, name: str) -> LinkServer:
    _, catalog = load_all()
    config = ServerConfig.default(data_dir=tmp / name, delivery_queue_size=100_000)
    server = LinkServer(config, catalog).start()
    server.engine.add_context(CONTEXT)
    return server


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.002)


class OursOutbound:
    """Ours: fire -> commit -> outbox -> bridge -> confirm, on one server kept for every round."""

    def __init__(self, rabbit: Rabbit, tmp: Path) -> None:
        self.rabbit = rabbit
        self.server = make_server(tmp, "outbound")
        self.host = self.server.add_bridge(
            "bench",
            AmqpBridge("bench", url=rabbit.url, exchange=rabbit.exchange),
            select=[Select(mask="devices.*")],
        )
        wait_until(lambda: self.host.outbound.is_ready, 30, "the bridge to connect")
        settle()

    def round(self, events: int) -> tuple[float, list[tuple[str, bytes, str]]]:
        """One round: events per second, fired to confirmed; and the bodies sent."""
        outbound, fire = self.host.outbound, self.server.engine.fire
        self.rabbit.purge()
        published = outbound.stats.published
        started = time.perf_counter()
        fired = [fire(CONTEXT, "measurement", record(float(i))) for i in range(events)]
        wait_until(lambda: outbound.stats.published - published >= events, 300, "the confirms")
        wait_until(lambda: outbound.depth == 0, 300, "the outbox to empty")
        rate = events / (time.perf_counter() - started)
        return rate, [(f"{CONTEXT}.measurement", encode(e, "node0"), str(e.id)) for e in fired]

    def close(self) -> None:
        self.server.stop()


def outbound_rates(rabbit: Rabbit, tmp: Path, events: int, rounds: int) -> tuple[float, float]:
    """(ours, raw pika): best of ``rounds`` each, the rounds in turn (ours, pika, ours, ...), so
    a change of the machine's load falls on both; pika sends the bodies of our first round."""
    ours_best = theirs_best = 0.0
    ours = OursOutbound(rabbit, tmp)
    theirs: PikaPublisher | None = None
    try:
        bodies: list[tuple[str, bytes, str]] = []
        for _ in range(rounds):
            rate, sent = ours.round(events)
            ours_best, bodies = max(ours_best, rate), bodies or sent
            if theirs is None:
                theirs = PikaPublisher(rabbit)
            theirs_best = max(theirs_best, theirs.round(bodies))
    finally:
        ours.close()
        if theirs is not None:
            theirs.close()
    return ours_best, theirs_best


def burst(host: Any, fire: Any, events: int) -> float:
    """The bridge's steady-state rate: ``events`` fired at once, until all are confirmed."""
    published = host.outbound.stats.published
    started = time.perf_counter()
    for i in range(events):
        fire(CONTEXT, "measurement", record(float(i)))
    wait_until(lambda: host.outbound.stats.published - published >= events, 300, "the confirms")
    wait_until(lambda: host.outbound.depth == 0, 300, "the outbox to empty")
    return events / (time.perf_counter() - started)


def drain(
    rabbit: Rabbit, tmp: Path, outage: float, rate: int, steady_events: int
) -> tuple[float, int, int, int, float, tuple[float, float]]:
    """(drain rate, events fired, events that arrived, outbox depth when the bridge was back,
    seconds from the broker's return until the bridge had reconnected, steady-state rate of
    the same bridge through the same proxy: a burst of ``steady_events`` just before the
    outage and one just after the drain, each)."""
    server = make_server(tmp, "drain")
    proxy = TcpProxy.for_url(rabbit.url)
    firing = threading.Event()
    fired: list[int] = []
    rabbit.purge()
    consumer = IdConsumer(rabbit.url, rabbit.queue)  # takes the queue's messages throughout
    try:
        bridge = AmqpBridge("drain", url=proxy.url_for(rabbit.url), exchange=rabbit.exchange)
        host = server.add_bridge("drain", bridge, select=[Select(mask="devices.*")])
        wait_until(lambda: host.outbound.is_ready, 30, "the bridge to connect")
        settle()
        fire = server.engine.fire
        before = burst(host, fire, steady_events)

        def fire_at_rate() -> None:
            started, i = time.perf_counter(), 0
            while firing.is_set():
                due = int((time.perf_counter() - started) * rate)
                while i < due:
                    fired.append(fire(CONTEXT, "measurement", record(float(i))).id)
                    i += 1
                time.sleep(0.005)

        firing.set()
        firer = threading.Thread(target=fire_at_rate, daemon=True)
        firer.start()
        time.sleep(1.0)  # steady state first
        proxy.set_available(False)
        time.sleep(outage)
        returned = time.perf_counter()
        proxy.set_available(True)
        # The bridge finds the broker back at its next connection attempt (its back-off: at
        # most 5 s); the drain runs from there.
        wait_until(lambda: host.outbound.is_ready, 30, "the bridge to reconnect")
        back = time.perf_counter()
        depth = host.outbound.depth
        published = host.outbound.stats.published
        # Drained: the backlog is gone; what the firer adds meanwhile is published as it comes.
        wait_until(lambda: host.outbound.depth <= rate // 10, outage * 10 + 60, "the outbox to drain")
        drained = host.outbound.stats.published - published
        elapsed = time.perf_counter() - back
        firing.clear()
        firer.join()
        wait_until(lambda: host.outbound.depth == 0, 60, "the last events")
        after = burst(host, fire, steady_events)
        arrived = consumer.wait_for({str(event_id) for event_id in fired}, timeout=60)
    finally:
        server.stop()
        proxy.close()
        consumer.close()
    missing = sum(1 for event_id in fired if str(event_id) not in arrived)
    return drained / elapsed, len(fired), len(fired) - missing, depth, back - returned, (before, after)


def p50(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 2]


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def settle() -> None:
    """What ``linkserver serve`` does once it is up (linkserver/net/serve.py): collect, then
    freeze what was made so far out of the collector's full passes, which otherwise walk the
    whole server (tree, definitions, catalog) and stall every thread of the process for
    50-100 ms now and then. The nodes here are started in-process, not by ``serve``."""
    import gc

    gc.collect()
    gc.freeze()


def at_rate(rate: int, seconds: float, send: Any) -> int:
    """Call ``send(i)`` ``rate`` times a second for ``seconds``, evenly spaced; returns how many."""
    started, i = time.perf_counter(), 0
    total = int(rate * seconds)
    while i < total:
        due = started + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        send(i)
        i += 1
    return total


class Receiver:
    """A receiving end in a process of its own (``bus.py --receive KIND ...``): it prints one line
    per message, the event's name (``-`` for pika) and its latency, after a first ``ready``. The
    clock is the machine's monotonic clock (``time.perf_counter`` on Linux), the same in every
    process, so latencies are taken across processes as a real second node or consumer would."""

    def __init__(self, *args: str) -> None:
        import subprocess

        self.process = subprocess.Popen(self.command(args), stdout=subprocess.PIPE, text=True)
        self.got: dict[str, list[float]] = {}
        self.arrived = threading.Condition()
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit(f"the receiver {args[0]} did not start")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def command(self, args: tuple[str, ...]) -> list[str]:
        """The receiving process's command line."""
        return [sys.executable, str(Path(__file__).resolve()), "--receive", *args]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            name, latency = line.split()
            with self.arrived:
                self.got.setdefault(name, []).append(float(latency))
                self.arrived.notify_all()

    def reset(self, name: str) -> None:
        with self.arrived:
            self.got[name] = []

    def wait(self, name: str, count: int, timeout: float = 60) -> list[float]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.got.get(name, ())) >= count, timeout)
            return list(self.got.get(name, ()))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class IdConsumer:
    """A consumer of the drain test's queue in a process of its own (``bus.py --receive ids URL
    QUEUE``), as the bridge's consumers would take its messages: it prints each message id."""

    def __init__(self, url: str, queue: str) -> None:
        import subprocess

        command = [sys.executable, str(Path(__file__).resolve()), "--receive", "ids", url, queue]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.ids: set[str] = set()
        self.arrived = threading.Condition()
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the drain's consumer did not start")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.arrived:
                self.ids.add(line.strip())
                self.arrived.notify_all()

    def wait_for(self, wanted: set[str], timeout: float) -> set[str]:
        """The ids consumed so far, once all of ``wanted`` are among them (or ``timeout`` passed)."""
        with self.arrived:
            self.arrived.wait_for(lambda: wanted <= self.ids, timeout)
            return set(self.ids)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def receive(kind: str, args: list[str]) -> int:
    """The child side of :class:`Receiver` and :class:`IdConsumer`."""
    out_lock = threading.Lock()

    def report(name: str, latency: float) -> None:
        with out_lock:
            sys.stdout.write(f"{name} {latency!r}\n")
            sys.stdout.flush()

    if kind == "ids":
        url, queue = args
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1000)
        out = sys.stdout

        def consumed(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            out.write(f"{properties.message_id}\n")
            if method.delivery_tag % 100 == 0:
                out.flush()
                channel.basic_ack(method.delivery_tag, multiple=True)

        def flush() -> None:  # the last messages of a burst: printed (and acknowledged) soon
            out.flush()
            connection.call_later(0.2, flush)

        channel.basic_consume(queue, consumed)
        connection.call_later(0.2, flush)
        print("ready", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            channel.start_consuming()
        return 0
    if kind == "pika":
        url, queue = args
        consumer = pika.BlockingConnection(pika.URLParameters(url))
        channel = consumer.channel()
        channel.basic_qos(prefetch_count=1000)

        def message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            latency = time.perf_counter() - float(properties.message_id)
            channel.basic_ack(method.delivery_tag)
            report("-", latency)

        channel.basic_consume(queue, message)
        settle()
        print("ready", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            channel.start_consuming()
        return 0
    tmp, url, exchange, database_url = args
    node = make_node(Path(tmp), "b", url, exchange, database_url)
    cluster = node.cluster
    assert cluster is not None
    wait_until(lambda: cluster.connected, 30, "node B to connect")
    node.listen("bench", "*", lambda event: report(event.name, time.perf_counter() - event.data[0]["sent"]))
    node.listen(  # committed events only: after node A's commit notice (docs/cluster.md)
        "bench",
        "reading",
        lambda event: report("durable", time.perf_counter() - event.data[0]["sent"]),
        durable=True,
    )
    settle()
    print("ready", flush=True)
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    node.stop()
    return 0


class PikaPath:
    """Raw pika publish-to-consume: persistent messages of ``size`` bytes on a topic exchange of
    its own, one connection publishing here, another consuming in a process of its own.

    Like node A's publisher, the channel is in publisher-confirm mode and the publish does not
    wait for its confirm (node A's fire does not either: its connection's thread takes the
    confirms as they come): the channel underneath the blocking one gets
    ``confirm_delivery``, the blocking channel's ``basic_publish`` writes the message and
    returns, and the confirms are read as the connection processes its input (while publishing,
    and after each slice, when every message must have been confirmed, none refused). So
    RabbitMQ does for each message what it does for A's: route it to a durable queue as a
    persistent message and confirm it. (Until 2026-12-03 this publisher had no confirms; one
    ad-hoc run then gave p99 7.0 ms with them against 6.1 without.)"""

    def __init__(self, url: str, size: int) -> None:
        self.exchange = f"linkserver-bench-n2n-{uuid.uuid4().hex[:8]}"
        self.queue = self.exchange + "-q"
        self.padding = b"x" * size
        self.publisher = pika.BlockingConnection(pika.URLParameters(url))
        self.out = self.publisher.channel()
        self.out.exchange_declare(self.exchange, "topic", durable=True)
        self.out.queue_declare(self.queue, durable=True)
        self.out.queue_bind(self.queue, self.exchange, "#")
        self.confirms = {"acked": 0, "nacked": 0, "ready": False}
        self.published = 0  # delivery tags handed out: one per publish on the channel
        confirms = self.confirms

        def on_confirm(frame: Any) -> None:
            if isinstance(frame.method, Basic.Nack):
                confirms["nacked"] += 1
            confirms["acked"] = max(confirms["acked"], frame.method.delivery_tag)

        self.out._impl.confirm_delivery(
            ack_nack_callback=on_confirm, callback=lambda _: confirms.update(ready=True)
        )
        while not confirms["ready"]:
            self.publisher.process_data_events(time_limit=0.1)
        self.consumer = Receiver("pika", url, self.queue)

    def publish(self, properties: pika.BasicProperties) -> None:
        """One persistent message, confirmed later (see the class doc)."""
        self.out.basic_publish(self.exchange, "bench.reading", self.padding, properties)
        self.published += 1

    def all_confirmed(self, timeout: float = 30) -> None:
        """Every message published so far confirmed by RabbitMQ (after a slice: not timed)."""
        deadline = time.monotonic() + timeout
        while self.confirms["acked"] < self.published and time.monotonic() < deadline:
            self.publisher.process_data_events(time_limit=0.01)
        if self.confirms["acked"] < self.published or self.confirms["nacked"]:
            raise SystemExit(
                f"raw pika: {self.confirms['acked']} of {self.published} confirmed, "
                f"{self.confirms['nacked']} refused"
            )

    def measure(self, rate: int, seconds: float) -> list[float]:
        self.consumer.reset("-")
        total = at_rate(
            rate,
            seconds,
            lambda i: self.publish(
                pika.BasicProperties(delivery_mode=2, message_id=repr(time.perf_counter()))
            ),
        )
        latencies = self.consumer.wait("-", total)
        self.all_confirmed()
        return latencies

    def close(self) -> None:
        self.consumer.close()
        self.out.queue_delete(self.queue)
        self.out.exchange_delete(self.exchange)
        self.publisher.close()


def make_node(tmp: Path, name: str, url: str, exchange: str, database_url: str) -> LinkServer:
    from linkserver.loading.cluster import ClusterSection

    contexts = tmp / "bench-contexts.yaml"
    contexts.write_text(BENCH_CONTEXTS)
    config_file = tmp / f"{name}.yaml"
    config_file.write_text(f"server:\n  contexts: [{str(ROOT / 'contexts')!r}, {str(contexts)!r}]\n")
    _, catalog = load_all(config_file, data_dir=tmp / name)
    cluster = ClusterSection(url=url, exchange=exchange, node_name=name)
    config = ServerConfig.default(
        data_dir=tmp / name,
        database_url=database_url,
        delivery_queue_size=100_000,
        sections={"cluster": cluster},
    )
    return LinkServer(config, catalog).start()


class NodePath:
    """Two cluster nodes on one history: A in this process, B (with the listener) in a process
    of its own, as two nodes run."""

    def __init__(self, url: str, tmp: Path, database_url: str) -> None:
        self.url = url
        self.exchange = f"linkserver-bench-cluster-{uuid.uuid4().hex[:8]}"
        self.a = make_node(tmp, "a", url, self.exchange, database_url)
        a = self.a.cluster
        assert a is not None
        wait_until(lambda: a.connected, 30, "node A to connect")
        self.b = Receiver("node", str(tmp), url, self.exchange, database_url)
        # A's own commits of the readings: the part of the path that is history's, not the bus's
        self.commits: list[float] = []
        self.durable: list[float] = []  # the readings to a durable listener on B: after A's commit
        self.a.listen("bench", "reading", self._committed, durable=True)
        while not self.b.got.get("tick"):  # both ends bound
            self.a.fire("bench", "tick", [{"sent": time.perf_counter()}])
            time.sleep(0.05)
        self.size = len(encode_event(self.a.fire("bench", "tick", [{"sent": time.perf_counter()}])))
        time.sleep(0.5)

    def _committed(self, event: Any) -> None:
        self.commits.append(time.perf_counter() - event.data[0]["sent"])

    def measure(self, name: str, rate: int, seconds: float) -> list[float]:
        """Latencies A -> B of ``name`` events (reading: persistent, tick: not) fired at ``rate``."""
        self.b.reset(name)
        self.b.reset("durable")
        fire = self.a.fire
        total = at_rate(rate, seconds, lambda i: fire("bench", name, [{"sent": time.perf_counter()}]))
        got = self.b.wait(name, total)
        if name == "reading":
            self.durable += self.b.wait("durable", total)
        return got

    def close(self) -> None:
        self.b.close()
        self.a.stop()
        rabbit = pika.BlockingConnection(pika.URLParameters(self.url))
        rabbit.channel().exchange_delete(self.exchange)
        rabbit.close()


class RawCommitPath:
    """The commit-first floor on PostgreSQL (printed, not a goal): raw psycopg, one
    autocommitted INSERT of a row like an event's (a bigint id, text, a timestamptz, JSON data)
    per event into a table of the bench schema, and once it returned, in the same thread, the
    pika publish of :class:`PikaPath` (its exchange, consumer process and message size), at the
    same rate in the same slices. Each commit waits for the WAL sync as A's do, and nothing is
    published before its commit (as node A did before it published at fire time). Two figures:
    the commit alone (what A's commit has above it is LinkServer's, the rest is the disk's) and
    the whole, from before the INSERT to the consumer's callback (what node to node had above it
    was LinkServer's: its threads, the outbox row, the encoding, B's decoding and delivery)."""

    def __init__(self, database_url: str, pika_path: PikaPath) -> None:
        import psycopg
        from sqlalchemy import make_url
        from sqlalchemy.dialects.postgresql import psycopg as dialect

        args, options = dialect.dialect().create_connect_args(make_url(database_url))
        self.db = psycopg.connect(*args, **options, autocommit=True)
        self.db.execute(
            "CREATE TABLE raw_commits (id bigint PRIMARY KEY, context text, created timestamptz, data jsonb)"
        )
        self.ids = itertools.count(1)
        self.pika = pika_path

    def measure(self, rate: int, seconds: float) -> tuple[list[float], list[float]]:
        """(commit latencies, commit-then-publish-to-consume latencies)."""
        from datetime import UTC, datetime

        latencies: list[float] = []
        execute, ids = self.db.execute, self.ids
        sql = "INSERT INTO raw_commits VALUES (%s, %s, %s, %s)"
        path = self.pika
        path.consumer.reset("-")
        publish = path.publish

        def send(_: int) -> None:
            started = time.perf_counter()
            data = json.dumps([{"sent": started}])
            execute(sql, (next(ids), "bench", datetime.now(UTC), data))
            latencies.append(time.perf_counter() - started)
            publish(pika.BasicProperties(delivery_mode=2, message_id=repr(started)))

        total = at_rate(rate, seconds, send)
        whole = path.consumer.wait("-", total)
        path.all_confirmed()
        return latencies, whole

    def close(self) -> None:
        self.db.close()


@contextlib.contextmanager
def cluster_database(postgres_url: str | None, tmp: Path) -> Iterator[tuple[str, str]]:
    """(URL, what it is) of the nodes' shared history: a schema of its own on PostgreSQL (dropped
    after), or without one a SQLite file (two processes' writers on one file wait on SQLite's
    busy handler: slower commits than a cluster on PostgreSQL has)."""
    if not postgres_url:
        yield f"sqlite:///{tmp / 'cluster.sqlite3'}", "SQLite"
        return
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    schema = f"lsbench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in postgres_url else "?"
        yield f"{postgres_url}{separator}options={quote(f'-csearch_path={schema}')}", "PostgreSQL"
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def node_to_node(url: str, tmp: Path, seconds: float, postgres_url: str | None) -> None:
    """The paths measured in turn in slices of SLICE_SECONDS, so a change in the machine's
    load falls on all of them alike."""
    with cluster_database(postgres_url, tmp) as (database_url, kind):
        node_to_node_on(url, tmp, seconds, database_url, kind)


def node_to_node_on(url: str, tmp: Path, seconds: float, database_url: str, kind: str) -> None:
    nodes = NodePath(url, tmp, database_url)
    baseline = PikaPath(url, nodes.size)
    persistent: list[float] = []
    transient: list[float] = []
    theirs_all: list[float] = []
    raw = RawCommitPath(database_url, baseline) if kind == "PostgreSQL" else None
    raw_commits: list[float] = []
    floor: list[float] = []
    slices = max(1, round(seconds / SLICE_SECONDS))
    settle()  # node A, the pika publisher and the raw path share this process
    try:
        for _ in range(slices):
            persistent += nodes.measure("reading", NODE_RATE, seconds / slices)
            theirs_all += baseline.measure(NODE_RATE, seconds / slices)
            transient += nodes.measure("tick", NODE_RATE, seconds / slices)
            if raw is not None:
                commits, whole = raw.measure(NODE_RATE, seconds / slices)
                raw_commits += commits
                floor += whole
    finally:
        if raw is not None:
            raw.close()
        baseline.close()
        nodes.close()
    ours, theirs = p99(persistent), p99(theirs_all)
    commits = [t for t in nodes.commits if t < 60]
    print(
        f"node A's own commit of those events (fire to committed, on {kind}): p99 "
        f"{p99(commits) * 1000:.1f} ms (p50 {p50(commits) * 1000:.2f}); non-persistent vs pika: "
        f"{p99(transient) / theirs:.2f}x",
        flush=True,
    )
    if raw_commits:
        print(
            f"raw psycopg INSERT+commit at {NODE_RATE}/s on the same database, same slices: p99 "
            f"{p99(raw_commits) * 1000:.1f} ms (p50 {p50(raw_commits) * 1000:.2f}): the database's share",
            flush=True,
        )
        print(
            f"commit-first floor (not a goal): that INSERT+commit, then the pika publish, to its "
            f"consume: p99 {p99(floor) * 1000:.1f} ms (p50 {p50(floor) * 1000:.2f}), "
            f"{p99(floor) / theirs:.2f}x pika's p99; node to node persistent: "
            f"{p99(persistent) / p99(floor):.2f}x the floor",
            flush=True,
        )
    print(
        f"node to node at {NODE_RATE}/s for {seconds:.0f} s each: persistent p99 {ours * 1000:.1f} ms "
        f"(p50 {p50(persistent) * 1000:.2f}, {len(persistent)} events), non-persistent p99 "
        f"{p99(transient) * 1000:.1f} ms (p50 {p50(transient) * 1000:.2f}); raw pika publish-to-consume "
        f"p99 {theirs * 1000:.1f} ms (p50 {p50(theirs_all) * 1000:.2f}, {len(theirs_all)} messages of "
        f"{nodes.size} bytes); {slices} alternating slices each, history on {kind}",
        flush=True,
    )
    print(
        f"the same persistent events to a durable listener on node B (after A's commit notice): p99 "
        f"{p99(nodes.durable) * 1000:.1f} ms (p50 {p50(nodes.durable) * 1000:.2f}, "
        f"{len(nodes.durable)} events), {p99(nodes.durable) / theirs:.2f}x pika's p99 (not a goal)",
        flush=True,
    )
    ratio = ours / theirs
    verdict = "ok" if ratio <= NODE_TARGET else "short"
    print(f"goal node_to_node_p99: {ratio:.2f}x (target <= {NODE_TARGET:.2f}x) {verdict}", flush=True)


def drain_part(rabbit: Rabbit, tmp: Path, outage: float, rate: int, steady_events: int) -> bool:
    """The drain test and its goal line; False when events were lost."""
    drain_rate, fired, arrived, depth, reconnect, bursts = drain(rabbit, tmp, outage, rate, steady_events)
    ours = sum(bursts) / 2
    print(
        f"outbox drain after {outage:.0f} s outage at {rate:,}/s: reconnected {reconnect:.1f} s after "
        f"the broker's return, {depth:,} events owed then, drained at {drain_rate:,.0f} events/s; "
        f"{arrived:,} of {fired:,} fired arrived",
        flush=True,
    )
    print(
        f"the same bridge's steady state through the same proxy (bursts of {steady_events:,} just "
        f"before the outage and after the drain, mean): {ours:,.0f} events/s (before "
        f"{bursts[0]:,.0f}, after {bursts[1]:,.0f})",
        flush=True,
    )
    if arrived != fired:
        print(f"goal outbox_drain_vs_steady: LOST {fired - arrived} events (target: none) short")
        return False
    goal("outbox_drain_vs_steady", drain_rate / ours, f" ({drain_rate:,.0f} vs {ours:,.0f} events/s)")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("LINKSERVER_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    parser.add_argument("--events", type=int)
    parser.add_argument("--outage", type=float)
    parser.add_argument("--rate", type=int)
    parser.add_argument("--window", type=float, help="seconds of firing per side, node to node")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "LINKSERVER_BENCH_POSTGRES_URL", os.environ.get("LINKSERVER_TEST_POSTGRES_URL")
        ),
        help="the cluster nodes' shared history (a schema of its own); default SQLite",
    )
    parser.add_argument(
        "--part",
        action="append",
        choices=PARTS,
        help="run only this part (repeatable); the drain's steady-state rate needs outbound",
    )
    parser.add_argument("--receive", nargs="+", help=argparse.SUPPRESS)  # a Receiver's child
    args = parser.parse_args()
    if args.receive:
        logging.basicConfig(level=logging.ERROR)
        return receive(args.receive[0], args.receive[1:])
    window = args.window or NODE_WINDOW["quick" if args.quick else "full"]
    events, rounds, outage, rate = SETTINGS["quick" if args.quick else "full"]
    events, outage, rate = args.events or events, args.outage or outage, args.rate or rate
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # the proxy's cuts are on purpose
    try:
        rabbit = Rabbit(args.amqp_url)
    except Exception as exc:  # noqa: BLE001
        print(f"rabbitmq unavailable at {args.amqp_url}: {exc}", file=sys.stderr)
        print("goal bridge_outbound_vs_pika: n/a")
        print("goal outbox_drain_vs_steady: n/a")
        print("goal node_to_node_p99: n/a")
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="linkserver-bus-") as scratch:
            tmp = Path(scratch)
            parts = set(args.part or PARTS)
            if "outbound" in parts:
                ours, theirs = outbound_rates(rabbit, tmp, events, rounds)
                print(
                    f"outbound: bridge {ours:,.0f} events/s (fired, committed, confirmed); "
                    f"raw pika {theirs:,.0f} messages/s (confirmed), {events:,} per round",
                    flush=True,
                )
                goal("bridge_outbound_vs_pika", ours / theirs)
            if "drain" in parts and not drain_part(rabbit, tmp, outage, rate, min(events, 10_000)):
                return 1
            if "node" in parts:
                node_to_node(args.amqp_url, tmp, window, args.postgres_url)
    finally:
        rabbit.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
