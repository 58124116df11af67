"""The asyncio client: the same calls as the blocking one, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from client_helpers import LiveServer

from linkserver.client import AsyncClient, AuthenticationFailed, ServerUnavailable
from linkserver.core.errors import ContextNotFound, DataTableError, EventNotDefined, FilterError
from linkserver.core.events import Event


def reading(value: float) -> list[dict[str, Any]]:
    return [{"quantity": "temperature", "value": value, "unit": "degC"}]


def run(live: LiveServer, scenario: Callable[[AsyncClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with AsyncClient(live.url) as client:
            await scenario(client)

    asyncio.run(main())


def test_async_calls_fire_read_and_acknowledge(live: LiveServer) -> None:
    async def scenario(client: AsyncClient) -> None:
        assert (await client.me())["user"] == "admin"
        plc = await client.add_context("devices.plc7", description="PLC 7")
        event = await client.fire(plc, "error", {"code": "E1", "message": "hot"}, durable=True)
        assert (await client.event(event.id)) == event
        results = await client.fire_batch(
            [(plc, "measurement", reading(i)) for i in range(5)] + [(plc, "x")], True
        )
        assert [type(r) for r in results] == [Event] * 5 + [EventNotDefined]
        ids = [
            e.id async for e in client.iter_history(mask=plc, event="measurement", limit=2, order="oldest")
        ]
        assert ids == [r.id for r in results[:5]]
        acked = await client.acknowledge(event.id, "cooled down")
        assert acked.acknowledgements[0].text == "cooled down"
        assert (await client.tree("devices"))["children"][0]["path"] == plc
        assert (await client.context(plc))["description"] == "PLC 7"
        with pytest.raises(DataTableError):
            await client.fire(plc, "measurement", [{"value": 1}])
        with pytest.raises(ContextNotFound):
            await client.remove_context("devices.none")
        assert await client.remove_context(plc) == [plc]

    run(live, scenario)


def test_async_subscription_is_an_async_iterator(live: LiveServer) -> None:
    async def scenario(client: AsyncClient) -> None:
        plc = await client.add_context("devices.plc7")
        subscription = await client.subscribe("devices.**", "measurement", min_level="NOTICE")
        fired = [await client.fire(plc, "measurement", reading(i)) for i in range(3)]
        got = []
        async for event in subscription:
            got.append(event)
            if len(got) == 3:
                break
        assert got == fired
        await subscription.aclose()
        assert [e async for e in subscription] == []

    run(live, scenario)


def test_async_subscription_unpacks_batches_in_order(live: LiveServer) -> None:
    async def scenario(client: AsyncClient) -> None:
        plc = await client.add_context("devices.plc7")
        async with await client.subscribe(plc, "measurement") as subscription:
            fired = await client.fire_batch([(plc, "measurement", reading(i)) for i in range(300)])
            stream = aiter(subscription)
            got = [(await asyncio.wait_for(anext(stream), 5)).id for _ in fired]
            assert got == [e.id for e in fired if isinstance(e, Event)]
            assert (subscription.state.delivered, subscription.state.duplicates) == (300, 0)

    run(live, scenario)


def test_async_subscribe_errors_raise_on_await(live: LiveServer) -> None:
    async def scenario(client: AsyncClient) -> None:
        with pytest.raises(FilterError):
            await client.subscribe("devices.**", "measurement", filter="value ==")

    run(live, scenario)


def test_async_session_fires_over_the_websocket(live: LiveServer) -> None:
    async def scenario(client: AsyncClient) -> None:
        plc = await client.add_context("devices.plc7")
        async with await client.session() as session:
            first = await session.fire(plc, "measurement", reading(1), durable=True)
            batch = await session.fire_batch([(plc, "measurement", reading(2)), (plc, "nope")], durable=True)
        assert isinstance(first, int) and isinstance(batch[0], int) and isinstance(batch[1], EventNotDefined)
        assert (await client.history(mask=plc, count=True)).count == 2

    run(live, scenario)


def test_async_authentication_and_reachability_errors(live: LiveServer, unused_url: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(live.url, user="admin", password="nope") as wrong:
            with pytest.raises(AuthenticationFailed):
                await wrong.me()
        async with AsyncClient(live.url, token="no.such") as unknown:
            with pytest.raises(AuthenticationFailed):
                await unknown.subscribe()
        async with AsyncClient(unused_url, token="t", timeout=2) as nowhere:
            with pytest.raises(ServerUnavailable):
                await nowhere.me()
            with pytest.raises(ServerUnavailable):
                await nowhere.subscribe()

    asyncio.run(scenario())


def test_async_session_keeps_many_fires_in_flight_and_matches_each_answer(live: LiveServer) -> None:
    async def scenario(client: AsyncClient) -> None:
        plc = await client.add_context("devices.plc8")
        async with await client.session() as session:
            calls = [session.fire(plc, "measurement", reading(i), durable=True) for i in range(150)]
            calls.insert(75, session.fire(plc, "nope", durable=True))
            results = await asyncio.gather(*calls, return_exceptions=True)
        assert isinstance(results.pop(75), EventNotDefined)  # only its own call fails
        assert all(isinstance(i, int) for i in results) and results == sorted(results)
        assert (await client.history(mask=plc, count=True)).count == 150

    run(live, scenario)
