#!/usr/bin/env python3
"""Latency receivers of tools/bench/net.py, run in subprocesses of their own.

    net_receivers.py ws|amqp COUNT URL EXPECT SECONDS     (token or exchange in $BENCH_TOKEN)

Prints ``ready`` once every receiver subscribed, then, after EXPECT events
each or SECONDS, one JSON line ``{"latencies": [s...], "missing": n, "first":
t, "last": t}`` (when the first and last arrived). The firing time travels in
the event (``value``) or message (``t``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CONTEXT = "devices.bench"


LATENCIES: list[float] = []
ARRIVED: list[float] = []  # [first, last] arrival times: ARRIVED[1:] = [now] keeps the first


async def ws_receivers(count: int, url: str, expect: int, seconds: float) -> list[float]:
    from linkserver.client import AsyncClient

    latencies = LATENCIES
    async with AsyncClient(url, token=os.environ["BENCH_TOKEN"]) as client:
        subscriptions = [await client.subscribe(CONTEXT, "measurement") for _ in range(count)]
        print("ready", flush=True)

        async def receive(subscription: Any) -> None:
            got = 0
            async for event in subscription:
                now = time.time()
                latencies.append(now - event.data[0]["value"])
                ARRIVED[1:] = [now]
                got += 1
                if got >= expect:
                    return

        await asyncio.wait([asyncio.create_task(receive(s)) for s in subscriptions], timeout=seconds)
    return latencies


def amqp_receivers(count: int, url: str, expect: int, seconds: float) -> list[float]:
    """``count`` exclusive queues bound to the fanout exchange, consumed on one pika connection."""
    import pika

    latencies = LATENCIES
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    remaining = [count * expect]
    now, loads = time.time, json.loads

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        arrived = now()
        latencies.append(arrived - loads(body)["t"])
        ARRIVED[1:] = [arrived]
        remaining[0] -= 1
        if remaining[0] <= 0:
            channel.stop_consuming()

    for _ in range(count):
        queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(queue, os.environ["BENCH_TOKEN"])
        channel.basic_consume(queue, on_message, auto_ack=True)
    print("ready", flush=True)
    connection.call_later(seconds, channel.stop_consuming)
    channel.start_consuming()
    connection.close()
    return latencies


def main() -> None:
    role, count, url, expect, seconds = (
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
        float(sys.argv[5]),
    )
    if role == "ws":
        latencies = asyncio.run(ws_receivers(count, url, expect, seconds))
    else:
        latencies = amqp_receivers(count, url, expect, seconds)
    missing = count * expect - len(latencies)
    first, last = (ARRIVED[0], ARRIVED[-1]) if ARRIVED else (0.0, 0.0)
    print(
        json.dumps(
            {"latencies": [round(x, 6) for x in latencies], "missing": missing, "first": first, "last": last}
        )
    )


if __name__ == "__main__":
    main()
