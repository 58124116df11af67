"""Subscriptions survive a server restart: resumed from the last id, no gaps, no duplicates."""

from __future__ import annotations

import asyncio
from typing import Any

from client_helpers import LiveServer

from linkserver.client import AsyncClient, Backoff, Client

FAST = {"initial": 0.05, "maximum": 0.2}


def reading(value: float) -> list[dict[str, Any]]:
    return [{"quantity": "temperature", "value": value, "unit": "degC"}]


def fire_while_down(live: LiveServer, path: str, values: range) -> list[int]:
    """Stop the HTTP side, fire in-process (stored, nobody connected), start it again."""
    live.stop_http()
    ids = [live.server.fire(path, "measurement", reading(v), durable=True).id for v in values]
    live.start_http()
    return ids


def test_sync_subscription_resumes_after_restart_without_gaps_or_duplicates(
    live: LiveServer, client: Client
) -> None:
    plc = client.add_context("devices.plc7")
    subscription = client.subscribe(plc, "measurement", backoff=Backoff(**FAST))
    with subscription:
        before = [client.fire(plc, "measurement", reading(v)).id for v in range(3)]
        assert [subscription.get(timeout=5).id for _ in before] == before
        during = fire_while_down(live, plc, range(3, 8))
        after = [client.fire(plc, "measurement", reading(v)).id for v in range(8, 10)]
        got = []
        while len(got) < 7:
            event = subscription.get(timeout=10)
            assert event is not None, f"only {len(got)} events after the restart"
            got.append(event.id)
        assert got == during + after
        assert subscription.get(timeout=0.5) is None
        assert subscription.reconnects == 1 and subscription.state.duplicates == 0


def test_sync_subscription_without_events_yet_resumes_from_its_start(
    live: LiveServer, client: Client
) -> None:
    plc = client.add_context("devices.plc7")
    old = client.fire(plc, "measurement", reading(0), durable=True).id
    with client.subscribe(plc, "measurement", backoff=Backoff(**FAST)) as subscription:
        during = fire_while_down(live, plc, range(1, 4))
        got = [subscription.get(timeout=10) for _ in during]
        assert [e.id for e in got if e is not None] == during
        assert old not in [e.id for e in got if e is not None]


def test_sync_subscription_keeps_trying_while_the_server_is_down(live: LiveServer, client: Client) -> None:
    plc = client.add_context("devices.plc7")
    with client.subscribe(plc, "measurement", backoff=Backoff(**FAST)) as subscription:
        live.stop_http()
        event = live.server.fire(plc, "measurement", reading(1), durable=True)
        assert subscription.get(timeout=1.0) is None  # down: several attempts fail meanwhile
        assert not subscription.connected.is_set()
        live.start_http()
        assert subscription.get(timeout=10).id == event.id


def test_async_subscription_resumes_after_restart(live: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(live.url) as client:
            plc = await client.add_context("devices.plc7")
            subscription = await client.subscribe(plc, "measurement", backoff=Backoff(**FAST))
            async with subscription:
                before = [(await client.fire(plc, "measurement", reading(v))).id for v in range(2)]
                stream = aiter(subscription)
                assert [(await anext(stream)).id for _ in before] == before
                during = await asyncio.to_thread(fire_while_down, live, plc, range(2, 6))
                after = [(await client.fire(plc, "measurement", reading(v))).id for v in range(6, 8)]
                got = [(await asyncio.wait_for(anext(stream), 10)).id for _ in range(6)]
                assert got == during + after
                assert subscription.reconnects == 1 and subscription.state.duplicates == 0
                try:
                    extra = await asyncio.wait_for(anext(stream), 0.5)
                except TimeoutError:
                    extra = None
                assert extra is None

    asyncio.run(scenario())
