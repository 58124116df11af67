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
    """``count`` consumers, each with its own connection, channel and exclusive queue bound to
    the fanout exchange, all on one asyncio loop (pika's AsyncioConnection): the same shape
    as the WebSocket side, where each subscriber is a connection of its own."""
    import pika
    from pika.adapters.asyncio_connection import AsyncioConnection

    latencies = LATENCIES
    exchange = os.environ["BENCH_TOKEN"]
    now, loads = time.time, json.loads
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    done = loop.create_future()
    ready = [0]
    remaining = [count * expect]
    connections: list[Any] = []

    def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        arrived = now()
        latencies.append(arrived - loads(body)["t"])
        ARRIVED[1:] = [arrived]
        remaining[0] -= 1
        if remaining[0] <= 0 and not done.done():
            done.set_result(None)

    def failed(*args: Any) -> None:
        if not done.done():
            done.set_exception(RuntimeError(f"rabbitmq consumer failed: {args[-1]!r}"))

    def open_consumer(connection: Any) -> None:
        def on_channel(channel: Any) -> None:
            def on_declared(frame: Any) -> None:
                queue = frame.method.queue

                def on_bound(_: Any) -> None:
                    channel.basic_consume(queue, on_message, auto_ack=True, callback=on_consuming)

                channel.queue_bind(queue, exchange, callback=on_bound)

            channel.basic_qos(
                prefetch_count=1000,
                callback=lambda _: channel.queue_declare(
                    "", exclusive=True, auto_delete=True, callback=on_declared
                ),
            )

        connection.channel(on_open_callback=on_channel)

    def on_consuming(_: Any) -> None:
        ready[0] += 1
        if ready[0] == count:
            print("ready", flush=True)
            loop.call_later(seconds, lambda: done.done() or done.set_result(None))

    parameters = pika.URLParameters(url)
    for _ in range(count):
        connections.append(
            AsyncioConnection(
                parameters,
                on_open_callback=open_consumer,
                on_open_error_callback=failed,
                custom_ioloop=loop,
            )
        )
    try:
        loop.run_until_complete(done)
    finally:
        for connection in connections:
            if connection.is_open:
                connection.close()
        loop.run_until_complete(asyncio.sleep(0.2))
        loop.close()
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
