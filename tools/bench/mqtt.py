#!/usr/bin/env python3
"""MQTT ingest through LinkServer vs a raw MQTT publish -> subscribe of the same payloads, in one run.

Both sides get the same messages from the same kind of publisher (one paho
client publishing the shipped ``measurement`` data table as JSON with
QoS 1, as a device does) through the same Mosquitto:

- LinkServer: a LinkServer on a fresh SQLite history with the MQTT device
  controller (``linkserver.devices.mqtt:MqttController``, QoS 1, firing as a
  principal whose grants are checked); a message counts when its event was
  fired (JSON decoded, device context resolved, permission checked, data
  table validated, handed to the history writer, delivered to a listener)
  and acknowledged to the broker.
- Baseline: a plain paho client subscribed with QoS 1 that decodes the JSON
  payload: what any MQTT consumer in Python does at least.

Goals, ratios measured in the same run (best of interleaved rounds: the
machine is shared):

- ``mqtt_ingest_throughput``: messages per second, a burst published as
  fast as the subscriber takes them (at most 500 published and not yet
  arrived: beyond its queue limit a broker drops a slow subscriber's
  messages), first publish to last arrival; target >= 0.50x of the baseline.
- ``mqtt_ingest_p99``: publish-to-fire p99 at a steady 200 messages/s vs the
  baseline's publish-to-receive p99; target <= 2.00x.

The broker is ``$LINKSERVER_BENCH_MQTT_URL``, else ``$LINKSERVER_TEST_MQTT_URL``,
else mqtt://127.0.0.1:1883.

    python tools/bench/mqtt.py [--quick] [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from linkserver.core.permissions import Grants  # noqa: E402
from linkserver.devices.mqtt import MqttController  # noqa: E402
from linkserver.devices.mqtt_broker import BrokerAddress  # noqa: E402
from linkserver.loading import load_all  # noqa: E402
from linkserver.loading.config import ServerConfig, UserConfig  # noqa: E402
from linkserver.loading.shipped import SHIPPED_CONFIG  # noqa: E402
from linkserver.server.app import LinkServer  # noqa: E402

URL = os.environ.get("LINKSERVER_BENCH_MQTT_URL") or os.environ.get(
    "LINKSERVER_TEST_MQTT_URL", "mqtt://127.0.0.1:1883"
)
RATE = 200  # messages per second in the latency rounds
# Messages published and not yet arrived, at most, in the throughput rounds: a broker queues
# only so many for a slow subscriber (Mosquitto: max_queued_messages 1000) and drops the rest.
WINDOW = 500


def client(address: BrokerAddress, name: str) -> paho.Client:
    made = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"lsbench-{name}-{uuid.uuid4().hex[:8]}")
    made.max_inflight_messages_set(100)
    made.connect(address.host, address.port)
    made.loop_start()
    return made


def payload(value: float) -> bytes:
    return json.dumps([{"quantity": "temperature", "value": value, "unit": "degC"}]).encode()


class Arrivals:
    """Counts arrivals, keeps publish-to-arrival latencies (the publish time travels as the value)."""

    def __init__(self) -> None:
        self.count = 0
        self.latencies: list[float] = []
        self.done = threading.Event()
        self.wanted = 0
        self.last = 0.0

    def reset(self, wanted: int) -> None:
        self.count, self.latencies, self.wanted = 0, [], wanted
        self.done.clear()

    def arrived(self, sent: float) -> None:
        now = time.perf_counter()
        self.latencies.append(now - sent)
        self.count += 1
        if self.count >= self.wanted:
            self.last = now
            self.done.set()


def publish(publisher: paho.Client, topic: str, count: int, rate: float | None, arrivals: Arrivals) -> float:
    """Publish ``count`` messages at ``rate`` per second, or as fast as the subscriber takes them
    (at most WINDOW published and not yet arrived); returns when publishing began."""
    start = time.perf_counter()
    for n in range(count):
        if rate is not None:
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        else:
            while n - arrivals.count >= WINDOW:
                time.sleep(0.0002)
        publisher.publish(topic, payload(time.perf_counter()), qos=1)
    return start


class RawSide:
    def __init__(self, address: BrokerAddress, prefix: str) -> None:
        self.topic = f"{prefix}/raw/pump1/measurement"
        self.arrivals = Arrivals()
        self.subscriber = client(address, "raw-sub")
        subscribed = threading.Event()
        self.subscriber.on_subscribe = lambda *args: subscribed.set()
        self.subscriber.on_message = self._message
        self.subscriber.subscribe(f"{prefix}/raw/+/+", qos=1)
        subscribed.wait(10)
        self.publisher = client(address, "raw-pub")

    def _message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        self.arrivals.arrived(json.loads(message.payload)[0]["value"])

    def close(self) -> None:
        for made in (self.publisher, self.subscriber):
            made.disconnect()
            made.loop_stop()


class LinkServerSide:
    def __init__(self, address: BrokerAddress, prefix: str, workdir: Path) -> None:
        catalog = load_all(SHIPPED_CONFIG, data_dir=workdir)[1]
        users = {
            "admin": UserConfig(name="admin", grants=Grants({"**": "admin"})),
            "mqtt": UserConfig(name="mqtt", grants=Grants({"devices.**": "operator"})),
        }
        config = ServerConfig.default(
            data_dir=workdir, database_url=f"sqlite:///{workdir / 'history.sqlite3'}", users=users
        )
        self.server = LinkServer(config, catalog).start()
        self.arrivals = Arrivals()
        self.server.listen(
            "devices.*", "measurement", lambda event: self.arrivals.arrived(event.data[0]["value"])
        )
        self.controller = MqttController(
            url=str(address),
            topic=f"{prefix}/ls/{{device}}/{{event}}",
            persistent_session=False,
            client_id=f"{prefix}-ls",  # not the default: a server elsewhere on this broker would take it over
        )
        self.server.add_controller("mqtt", self.controller, principal="mqtt")
        if not self.controller.wait_connected(10):
            raise SystemExit(f"the MQTT controller did not connect to {address}")
        self.topic = f"{prefix}/ls/pump1/measurement"
        self.publisher = client(address, "ls-pub")

    def close(self) -> None:
        self.publisher.disconnect()
        self.publisher.loop_stop()
        self.server.stop("benchmark over")


def burst(side: RawSide | LinkServerSide, count: int) -> float:
    side.arrivals.reset(count)
    start = publish(side.publisher, side.topic, count, None, side.arrivals)
    if not side.arrivals.done.wait(120):
        raise SystemExit(f"{type(side).__name__}: {side.arrivals.count} of {count} messages arrived")
    return count / (side.arrivals.last - start)


def paced(side: RawSide | LinkServerSide, count: int) -> list[float]:
    side.arrivals.reset(count)
    publish(side.publisher, side.topic, count, RATE, side.arrivals)
    if not side.arrivals.done.wait(60):
        raise SystemExit(f"{type(side).__name__}: {side.arrivals.count} of {count} messages arrived")
    return side.arrivals.latencies


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]


def best(rounds: int, sides: tuple[Any, Any], measure: Callable[[Any], Any], better: Callable) -> list[Any]:
    results: list[Any] = [None, None]
    for _ in range(rounds):
        for index, side in enumerate(sides):
            gc.collect()
            value = measure(side)
            if results[index] is None or better(value, results[index]):
                results[index] = value
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--messages", type=int, help="messages per throughput round (default 20000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per goal (default 3)")
    args = parser.parse_args()
    messages = args.messages or (300 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 3)
    paced_count = 100 if args.quick else RATE * 10
    address = BrokerAddress.parse(URL)
    prefix = f"lsbench/{uuid.uuid4().hex[:12]}"
    workdir = Path(tempfile.mkdtemp(prefix="lsbench-mqtt-"))
    print(
        f"MQTT ingest vs raw publish->subscribe on {address}: best of {rounds} interleaved rounds; "
        f"bursts of {messages:,} QoS 1 messages, then {paced_count:,} at {RATE}/s"
    )
    raw = RawSide(address, prefix)
    ours = LinkServerSide(address, prefix, workdir)
    try:
        sides = (ours, raw)
        burst(ours, min(messages, 200))  # warm up: device context added, caches filled
        burst(raw, min(messages, 200))
        ls_rate, raw_rate = best(rounds, sides, lambda side: burst(side, messages), lambda a, b: a > b)
        ls_lat, raw_lat = best(
            rounds, sides, lambda side: paced(side, paced_count), lambda a, b: p99(a) < p99(b)
        )
        print(f"  throughput: linkserver {ls_rate:>9,.0f} msg/s   raw subscriber {raw_rate:>9,.0f} msg/s")
        print(
            f"  latency at {RATE}/s: linkserver p50 {statistics.median(ls_lat) * 1e3:.2f} ms "
            f"p99 {p99(ls_lat) * 1e3:.2f} ms   raw p50 {statistics.median(raw_lat) * 1e3:.2f} ms "
            f"p99 {p99(raw_lat) * 1e3:.2f} ms"
        )
        outcomes = dict(ours.controller.outcomes)
        print(f"  controller outcomes: {outcomes}")
    finally:
        ours.close()
        raw.close()
        shutil.rmtree(workdir, ignore_errors=True)
    throughput = ls_rate / raw_rate
    latency = p99(ls_lat) / p99(raw_lat)
    verdict = "ok" if throughput >= 0.5 else "short"
    print(f"goal mqtt_ingest_throughput: {throughput:.2f}x (target >= 0.50x) {verdict}")
    print(f"goal mqtt_ingest_p99: {latency:.2f}x (target <= 2.00x) {'ok' if latency <= 2.0 else 'short'}")


if __name__ == "__main__":
    main()
