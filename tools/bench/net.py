#!/usr/bin/env python3
"""Network API throughput and latency, next to RabbitMQ measured in the same run.

1. Fire rate (full run: best of three rounds each side): one client fires
   persistent ``measurement`` events over one WebSocket in batches of 100,
   4 batches in flight, ``durable`` (each answer waits for the SQLite
   commit), against a server in a subprocess (``python -m
   linkserver.net.serve``) with ``history.durability: fsync``: an answer
   means the event was synced to the disk, as RabbitMQ confirms a
   persistent message routed to a durable queue once it is persisted to
   disk (its message store fsyncs in batches, as our writer commits in
   groups). Next to it, this process publishes persistent
   messages (delivery_mode=2) of the same size to a durable queue of the
   local RabbitMQ with publisher confirms, in batches of the same size with
   the same number of batches in flight (pika BlockingConnection).
   Goal: ``ws_fire_vs_rabbitmq`` >= 1.00x.
2. Single-event ingest: the same client fires one persistent event per
   WebSocket message (``FireSession.fire_many``), ``durable`` (each answer
   waits for the commit; the server commits the events in flight together),
   with ``WINDOW`` (128) messages unanswered at once. Next to it, pika
   publishes one persistent message at a time to the durable queue with
   publisher confirms, the same number unconfirmed at once (pipelined).
   Goal: ``ws_single_fire_vs_rabbitmq`` >= 1.00x.
3. Latency: N subscribers receive events fired at R events/s; fire-to-receive
   p50/p99 from the firing time carried in the event (its value) or message.
   Like for like: each subscriber is a connection of its own on both sides.
   (A server of its own, with the default durability: nothing here waits
   for a commit.)
   Ours: N AsyncClient subscriptions, each its own WebSocket, spread over two
   net_receivers.py subprocesses (one asyncio loop each); the firer sends
   the events over one WebSocket, not durable. RabbitMQ: N consumers, each
   its own AMQP connection, channel and exclusive queue bound to a fanout
   exchange, spread over two subprocesses (pika's AsyncioConnection, one
   loop each); this process publishes (not persistent, no confirms) at the
   same rate. The goal's load (100 x 50 events/s) runs in ROUNDS rounds
   alternating ours and RabbitMQ, so that load from the rest of the machine
   hits both alike; the p99s are over every sample of every round (3 x 10 s:
   30 s of firing per side). "achieved" is the firing rate kept up;
   "delivered" the deliveries per second from the first arrival to the last
   (when saturated: what the system carried).
   Where each side's clock reads: the firer takes the time as it makes each
   event, just before sending it (both sides); our receiver where the
   application gets the event (``async for`` over the subscription, after
   the client decoded the message into an ``Event``), pika's receiver in its
   ``on_message`` callback, before decoding the body. Our server sends the
   whole event (id, context, name, level, times, data and more), larger than RabbitMQ's
   body (the fire message's size), and stores every event (``measurement``
   is persistent; nobody waits for the commit); RabbitMQ's messages are not
   persistent. Where the two differ, ours does the more work.

    python tools/bench/net.py [--quick] [--latency-only] [--rounds N] [--seconds S]
                              [--amqp-url amqp://guest:guest@127.0.0.1:5672/]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CONTEXT = "devices.bench"
RECEIVER_PROCESSES = 2
RECEIVERS = Path(__file__).with_name("net_receivers.py")
SETTINGS = {
    # name: (events per fire-rate round, rounds, batch, window)
    "quick": (2_000, 1, 100, 4),
    "full": (30_000, 3, 100, 4),
}
# Latency loads (subscribers, events/s, seconds per round, rounds). The first is the goal's: a
# load both systems can sustain here, so that the p99s compare delivery and not queueing behind
# a saturated CPU. The second shows what each carries when saturated (one round, no goal).
WINDOW = 128  # single events in flight, both sides (single-event ingest)
LOADS = {
    "quick": [(10, 500, 1.0, 1)],
    "full": [(100, 50, 10.0, 3), (100, 2_000, 5.0, 1)],
}


def record(value: float = 21.5) -> dict[str, Any]:
    return {"quantity": "temperature", "value": value, "unit": "degC"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the server ------------------------------------------------------------------


def start_server(
    tmp: Path, durability: str = "commit"
) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    port = free_port()
    config = tmp / "config" / "linkserver.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        "server:\n"
        f"  data_dir: {tmp / 'data'}\n"
        f"  contexts: [{ROOT / 'contexts'}]\n"
        f"  listen: 127.0.0.1:{port}\n"
        "delivery:\n"
        "  queue_size: 100000\n"
        "history:\n"
        f"  durability: {durability}\n"
    )
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "linkserver.net.serve", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    credentials = tmp / "data" / "admin.credentials"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the server exited with {process.returncode}:\n{(tmp / 'server.log').read_text()}"
            )
        if credentials.exists():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return process, url, json.loads(credentials.read_text())
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the server did not start within 30 s:\n{(tmp / 'server.log').read_text()}")


@contextlib.contextmanager
def running(tmp: Path, durability: str) -> Iterator[Any]:
    """A logged-in client of a new server in ``tmp`` with ``history.durability: durability``,
    holding the benchmark's context; the server is stopped afterwards."""
    from linkserver.client import Client

    process, url, credentials = start_server(tmp, durability)
    try:
        with Client(url, user=credentials["user"], password=credentials["password"]) as client:
            client.add_context(CONTEXT, description="benchmark device")
            yield client
    finally:
        stop_server(process)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- fire rate ----------------------------------------------------------------------


def ws_fire_rate(client: Any, total: int, rounds: int, batch: int, window: int, durable: bool) -> float:
    batches = [
        [(CONTEXT, "measurement", [record(float(i))]) for i in range(batch)] for _ in range(total // batch)
    ]
    best = 0.0
    with client.session() as session:
        list(session.fire_batches(batches[:2], durable=durable, window=window))  # warm up
        for _ in range(rounds):
            started = time.perf_counter()
            errors = 0
            for results in session.fire_batches(batches, durable=durable, window=window):
                errors += sum(1 for r in results if not isinstance(r, int))
            elapsed = time.perf_counter() - started
            if errors:
                raise SystemExit(f"{errors} events were refused by the server")
            best = max(best, len(batches) * batch / elapsed)
    return best


def ws_single_fire_rate(client: Any, total: int, rounds: int, window: int) -> float:
    """Persistent events, one per message, durable, ``window`` unanswered at once."""
    events = [(CONTEXT, "measurement", [record(float(i))]) for i in range(total)]
    best = 0.0
    with client.session() as session:
        list(session.fire_many(events[:window], durable=True, window=window))  # warm up
        for _ in range(rounds):
            started = time.perf_counter()
            errors = sum(
                1 for r in session.fire_many(events, durable=True, window=window) if not isinstance(r, int)
            )
            elapsed = time.perf_counter() - started
            if errors:
                raise SystemExit(f"{errors} events were refused by the server")
            best = max(best, total / elapsed)
    return best


def rabbit_publish_rate(
    amqp_url: str, total: int, rounds: int, batch: int, window: int, payload: bytes
) -> float | None:
    """Persistent messages with publisher confirms, ``batch`` per wait, ``window`` batches in flight."""
    try:
        import pika
        from pika.spec import Basic
    except ImportError:
        return None
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except Exception as exc:  # noqa: BLE001
        print(f"rabbitmq unavailable at {amqp_url}: {exc}", file=sys.stderr)
        return None
    channel = connection.channel()
    queue = f"linkserver-bench-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True)
    impl = channel._impl  # the async channel: publish without waiting, confirms in bulk
    state = {"acked": 0, "nacked": 0, "ready": False}

    def on_confirm(frame: Any) -> None:
        method = frame.method
        if isinstance(method, Basic.Nack):
            state["nacked"] += 1
        state["acked"] = max(state["acked"], method.delivery_tag)

    impl.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _: state.update(ready=True))
    while not state["ready"]:
        connection.process_data_events(time_limit=0.1)
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")

    def run(batches: int) -> float:
        tag = state["acked"]
        sent_tags: list[int] = []
        started = time.perf_counter()
        for _ in range(batches):
            for _ in range(batch):
                impl.basic_publish("", queue, payload, properties)
            tag += batch
            sent_tags.append(tag)
            if len(sent_tags) >= window:
                wait = sent_tags.pop(0)
                while state["acked"] < wait:
                    connection.process_data_events(time_limit=0.01)
        while state["acked"] < tag:
            connection.process_data_events(time_limit=0.01)
        return time.perf_counter() - started

    try:
        run(2)  # warm up
        best = max((total // batch) * batch / run(total // batch) for _ in range(rounds))
        if state["nacked"]:
            raise SystemExit(f"rabbitmq refused {state['nacked']} messages")
        return best
    finally:
        channel.queue_delete(queue)
        connection.close()


# -- latency ------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return (samples[0], samples[0]) if samples else (float("nan"), float("nan"))
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def run_receivers(kind: str, count: int, url: str, token: str, expect: int, seconds: float) -> list[Any]:
    """Start ``count`` receivers spread over RECEIVER_PROCESSES subprocesses; returns once all subscribed."""
    processes = []
    env = {**os.environ, "BENCH_TOKEN": token}
    for share in split(count, RECEIVER_PROCESSES):
        args = [sys.executable, str(RECEIVERS), kind, str(share), url, str(expect), str(seconds)]
        processes.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT))
    for process in processes:
        line = process.stdout.readline()  # "ready" once every receiver subscribed
        if line.strip() != "ready":
            for other in processes:
                other.kill()
            raise SystemExit(f"{kind} receivers failed to start: {line.strip()!r}")
    return processes


def split(count: int, parts: int) -> list[int]:
    parts = max(1, min(parts, count))
    return [count // parts + (1 if i < count % parts else 0) for i in range(parts)]


def collect(processes: list[Any]) -> dict[str, Any]:
    """Merge the receivers' samples: p50/p99 in ms, how many arrived, how many never did."""
    samples: list[float] = []
    missing = 0
    first, last = float("inf"), 0.0
    for process in processes:
        out, _ = process.communicate(timeout=300)
        result = json.loads(out.strip().splitlines()[-1])
        samples.extend(result["latencies"])
        missing += result["missing"]
        if result["latencies"]:
            first, last = min(first, result["first"]), max(last, result["last"])
    rate = len(samples) / (last - first) if last > first else float("nan")
    return summarise(samples, missing, rate)


def summarise(samples: list[float], missing: int, rate: float) -> dict[str, Any]:
    p50, p99 = percentiles(samples)
    return {
        "p50_ms": p50,
        "p99_ms": p99,
        "received": len(samples),
        "missing": missing,
        "delivered_rate": rate,
        "samples": samples,
    }


def pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one side as one result: percentiles over every sample."""
    samples = [x for r in rounds for x in r["samples"]]
    result = summarise(
        samples,
        sum(r["missing"] for r in rounds),
        statistics.fmean(r["delivered_rate"] for r in rounds),
    )
    result["achieved_rate"] = min(r["achieved_rate"] for r in rounds)
    result["round_p99s"] = [r["p99_ms"] for r in rounds]
    return result


def paced(rate: int, seconds: float, step: int, send: Any) -> float:
    """Call ``send(n)`` with ``step`` events every step/rate seconds; returns the achieved rate."""
    total = int(rate * seconds)
    interval = step / rate
    started = time.perf_counter()
    sent = 0
    while sent < total:
        target = started + (sent / step) * interval
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(min(step, total - sent))
        sent += step
    return total / (time.perf_counter() - started)


def ws_latency(client: Any, subscribers: int, rate: int, seconds: float) -> dict[str, Any]:
    total = int(rate * seconds)
    receivers = run_receivers("ws", subscribers, client.url, client.token() or "", total, seconds + 30)
    step = max(1, rate // 200)
    batches: list[list[Any]] = []

    def send(n: int) -> None:
        now = time.time()
        batches.append([(CONTEXT, "measurement", [record(now)]) for _ in range(n)])

    def paced_batches() -> Any:
        """Batches made at their firing time; pipelined, so answers never hold the pace back."""
        started, sent = time.perf_counter(), 0
        while sent < total:
            delay = started + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            send(min(step, total - sent))
            sent += step
            yield batches.pop()

    with client.session() as session:
        started = time.perf_counter()
        for _ in session.fire_batches(paced_batches(), window=64):
            pass
        achieved = total / (time.perf_counter() - started)
    result = collect(receivers)
    result["achieved_rate"] = achieved
    return result


def rabbit_latency(
    amqp_url: str, consumers: int, rate: int, seconds: float, size: int
) -> dict[str, Any] | None:
    try:
        import pika
    except ImportError:
        return None
    total = int(rate * seconds)
    exchange = f"linkserver-bench-{uuid.uuid4().hex[:8]}"
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except Exception:  # noqa: BLE001
        return None
    channel = connection.channel()
    channel.exchange_declare(exchange, "fanout")
    receivers = run_receivers("amqp", consumers, amqp_url, exchange, total, seconds + 30)
    padding = "x" * max(0, size - 40)

    def send(n: int) -> None:
        for _ in range(n):
            channel.basic_publish(exchange, "", json.dumps({"t": time.time(), "p": padding}).encode())

    try:
        achieved = paced(rate, seconds, max(1, rate // 200), send)
        result = collect(receivers)
    finally:
        channel.exchange_delete(exchange)
        connection.close()
    result["achieved_rate"] = achieved
    return result


# -- main -------------------------------------------------------------------------------------


def goal(name: str, ratio: float, target: float = 1.0, detail: str = "") -> None:
    verdict = "ok" if ratio >= target else "short"
    print(f"goal {name}: {ratio:.2f}x{detail} (target >= {target:.2f}x) {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--latency-only", action="store_true", help="skip the fire-rate comparison")
    parser.add_argument("--rounds", type=int, help="rounds of the latency goal's load per side")
    parser.add_argument("--seconds", type=float, help="seconds per round of the latency goal's load")
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    total, rounds, batch, window = SETTINGS[mode]
    loads = list(LOADS[mode])
    subscribers, rate, seconds, repeat = loads[0]
    loads[0] = (subscribers, rate, args.seconds or seconds, args.rounds or repeat)
    payload = json.dumps({"context": CONTEXT, "event": "measurement", "data": [record()]}).encode()
    results: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    rabbit = durable = rabbit_single = single = None
    with tempfile.TemporaryDirectory(prefix="linkserver-bench-") as directory:
        if not args.latency_only:
            # fsync: what RabbitMQ's confirms of persistent messages mean (see the docstring).
            with running(Path(directory) / "fire-rate", "fsync") as client:
                durable = ws_fire_rate(client, total, rounds, batch, window, durable=True)
                fast = ws_fire_rate(client, total, rounds, batch, window, durable=False)
                print(
                    f"websocket fire, batches of {batch}, {window} in flight: {durable:>9,.0f} "
                    f"events/s durable (fsync), {fast:,.0f} events/s without waiting for the commit"
                )
                rabbit = rabbit_publish_rate(args.amqp_url, total, rounds, batch, window, payload)
                if rabbit:
                    print(
                        f"rabbitmq persistent publish with confirms, same batches: {rabbit:>9,.0f} "
                        f"messages/s ({len(payload)} bytes each)"
                    )
                singles = total // 3 if mode == "full" else total // 4
                single = ws_single_fire_rate(client, singles, rounds, WINDOW)
                rabbit_single = rabbit_publish_rate(args.amqp_url, singles, rounds, 1, WINDOW, payload)
                theirs_note = f"   rabbitmq {rabbit_single:,.0f}/s" if rabbit_single else ""
                print(
                    f"websocket fire, one event per message, {WINDOW} in flight (rabbitmq: one message "
                    f"per publish, {WINDOW} unconfirmed), durable (fsync): {single:>9,.0f}/s{theirs_note}"
                )
        with running(Path(directory) / "latency", "commit") as client:
            for subscribers, rate, seconds, repeat in loads:
                ours, theirs = [], []
                for _ in range(repeat):  # alternating: the machine's other load hits both alike
                    ours.append(ws_latency(client, subscribers, rate, seconds))
                    other = rabbit_latency(args.amqp_url, subscribers, rate, seconds, len(payload))
                    if other is not None:
                        theirs.append(other)
                results.append((pooled(ours), pooled(theirs) if theirs else None))
    for (subscribers, rate, seconds, repeat), (mine, other) in zip(loads, results, strict=True):
        for name, result in (("websocket", mine), ("rabbitmq", other)):
            if result is not None:
                rounds_note = (
                    f", rounds' p99 {'/'.join(f'{p:.1f}' for p in result['round_p99s'])}"
                    if repeat > 1
                    else ""
                )
                print(
                    f"{name} latency, {subscribers} subscribers at {rate:,} events/s, "
                    f"{repeat} x {seconds:g} s "
                    f"(achieved {result['achieved_rate']:,.0f}, delivered "
                    f"{result['delivered_rate']:,.0f}/s): p50 {result['p50_ms']:.1f} ms, "
                    f"p99 {result['p99_ms']:.1f} ms{rounds_note} ({result['received']:,} received, "
                    f"{max(result['missing'], 0):,} missing){saturated(result, rate)}"
                )
    if durable is not None:
        if rabbit:
            goal("ws_fire_vs_rabbitmq", durable / rabbit)
        else:
            print("goal ws_fire_vs_rabbitmq: n/a (rabbitmq unavailable) short")
        if rabbit_single:
            goal("ws_single_fire_vs_rabbitmq", single / rabbit_single)
        else:
            print("goal ws_single_fire_vs_rabbitmq: n/a (rabbitmq unavailable) short")
    (mine, other), (subscribers, rate, _, _) = results[0], loads[0]
    if other is not None and mine["p99_ms"] > 0:
        ratio = other["p99_ms"] / mine["p99_ms"]
        ok = ratio >= 1 and not saturated(mine, rate)
        print(
            f"goal ws_latency_p99_ms: {mine['p99_ms']:.1f} ms vs rabbitmq {other['p99_ms']:.1f} ms = "
            f"{ratio:.2f}x at {subscribers} subscribers x {rate:,} events/s (target >= 1.00x) "
            f"{'ok' if ok else 'short'}"
        )


def saturated(result: dict[str, Any], rate: int) -> str:
    """A note when the load was not carried: firing fell behind, or deliveries never arrived."""
    if result["missing"] > 0 or result["achieved_rate"] < 0.95 * rate:
        return " SATURATED: the numbers show queueing, not delivery"
    return ""


if __name__ == "__main__":
    main()
