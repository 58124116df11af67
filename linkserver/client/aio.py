"""The asyncio client: the same calls as :class:`linkserver.client.Client`, awaited.

async with AsyncClient("http://127.0.0.1:7341") as client:
    await client.fire("devices.plc7", "measurement", [{"quantity": "t", "value": 21.5}])
    async for event in client.subscribe("devices.**", "measurement"):
        print(event)
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
from collections.abc import Generator, Iterable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from linkserver.client.calls_async import AsyncCalls
from linkserver.client.errors import (
    AuthenticationFailed,
    ProtocolError,
    ServerTimeout,
    ServerUnavailable,
    error_from_answer,
)
from linkserver.client.feed import FeedConnection
from linkserver.client.stream import (
    RETRYABLE,
    Backoff,
    SubscriptionState,
    connect_error,
    decode,
    websocket_url,
)
from linkserver.client.sync import MAX_MESSAGE
from linkserver.client.sync_ws import GapHandler
from linkserver.client.transport import (
    BatchItem,
    batch_items,
    default_url,
    endpoint,
    expect,
    fire_item,
    parse_results,
    resolve_credentials,
    response_error,
    tls_verify,
)
from linkserver.core.errors import BadRequest, LinkServerError
from linkserver.core.events import Event
from linkserver.core.levels import Level
from linkserver.typing import Gap
from linkserver.wire.encode import encode

log = logging.getLogger("linkserver.client")


class AsyncClient(AsyncCalls):
    """A session with one LinkServer for asyncio code; see :class:`linkserver.client.Client`."""

    def __init__(
        self,
        url: str | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = endpoint(url or default_url())
        self.url = self.endpoint.base
        self.credentials = resolve_credentials(self.endpoint, user, password, token)
        self._token = self.credentials.token
        self._http = httpx.AsyncClient(
            base_url=self.endpoint.api, timeout=timeout, verify=tls_verify(self.endpoint)
        )
        self._login_lock = asyncio.Lock()
        self._subscriptions: set[AsyncSubscription] = set()
        self.timeout = timeout

    async def login(self) -> str:
        body = {"user": self.credentials.user, "password": self.credentials.password}
        async with self._login_lock:
            self._token = str(expect(await self._send("POST", "/login", body, None, token=None), "token"))
            return self._token

    async def token(self) -> str | None:
        if self._token is None and self.credentials.user is not None:
            return await self.login()
        return self._token

    async def _send(self, method: str, path: str, body: Any, params: Any, *, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = None
        if body is not None:
            content, headers["Content-Type"] = encode(body), "application/json"
        try:
            response = await self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnavailable(self.url, type(exc).__name__) from exc
        except UnicodeEncodeError:  # a path or parameter from bytes that are not UTF-8
            raise BadRequest(f"the request cannot be sent: {path!r} or a parameter is not text") from None
        if response.status_code >= 400:
            raise response_error(response.status_code, response.text)
        try:
            return response.json() if response.content else {}
        except ValueError as exc:
            raise ProtocolError(f"the server answered {path} with something that is not JSON") from exc

    async def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        token = await self.token()
        try:
            return await self._send(method, path, body, params, token=token)
        except AuthenticationFailed:
            if self.credentials.user is None:
                raise
            return await self._send(method, path, body, params, token=await self.login())

    async def logout(self) -> None:
        token, self._token = self._token, None
        if token is not None and self.credentials.user is not None:
            await self._send("POST", "/logout", None, None, token=token)

    async def connect(self) -> FeedConnection:
        """A new authenticated WebSocket connection (re-logging in once on 401): websockets'
        asyncio connection, reading into a buffer it keeps, which a subscription has call
        it back with each message (:mod:`linkserver.client.feed`)."""
        for attempt in (0, 1):
            url = websocket_url(self.endpoint.websocket, await self.token())
            try:
                connection = await connect(
                    url,
                    open_timeout=self.timeout,
                    max_size=MAX_MESSAGE,
                    compression=None,
                    create_connection=FeedConnection,
                )
                assert isinstance(connection, FeedConnection)
                return connection
            except Exception as exc:  # noqa: BLE001 - mapped below
                error = connect_error(exc, self.url)
                if isinstance(error, AuthenticationFailed) and attempt == 0 and self.credentials.user:
                    await self.login()
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    async def session(self) -> AsyncFireSession:
        return AsyncFireSession(await self.connect(), self.url, self.timeout)

    def subscribe(
        self,
        mask: str = "**",
        event: str = "*",
        *,
        filter: str | None = None,  # noqa: A002
        min_level: Level | str | int | None = None,
        resume_from: int | None = None,
        on_gap: GapHandler | None = None,
        yield_gaps: bool = False,
        backoff: Backoff | None = None,
    ) -> AsyncSubscription:
        """An async iterator of events; ``await`` it to subscribe before iterating (errors raise then)."""
        state = SubscriptionState(mask, event, filter=filter, min_level=min_level, resume_from=resume_from)
        subscription = AsyncSubscription(self, state, on_gap, yield_gaps, backoff or Backoff())
        self._subscriptions.add(subscription)
        return subscription

    async def aclose(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncFireSession:
    """Firing over one WebSocket. Calls may be in flight together (``asyncio.gather`` of
    many ``fire`` calls, or tasks): each answer is matched to its request by ``ref``. The
    server commits durable fires that are in flight together in one transaction.

    With a ``timeout`` (the client's), a request whose server sends nothing at all for that
    long while it waits (no answer to it or to any other request), or does not take a request
    for that long, ends the session with :class:`ServerTimeout`, raised by every call then
    waiting and every later one, as :class:`~linkserver.client.FireSession` does.
    """

    def __init__(self, connection: ClientConnection, url: str = "", timeout: float | None = None) -> None:
        self._ws = connection
        self._refs = itertools.count(1)
        self.url = url
        self.timeout = timeout
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._broken: LinkServerError | None = None
        self._heard = 0.0  # the loop's time when the last message came

    async def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._broken is not None:
            raise self._broken
        ref = message["ref"] = next(self._refs)
        loop = asyncio.get_running_loop()
        answer_future = self._waiting[ref] = loop.create_future()
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        try:
            await asyncio.wait_for(self._ws.send(json.dumps(message, separators=(",", ":"))), self.timeout)
        except TimeoutError:
            self._waiting.pop(ref, None)
            raise self._timed_out("read none of the requests sent") from None
        except (ConnectionClosed, OSError) as exc:
            self._waiting.pop(ref, None)
            raise ServerUnavailable(self.url, "the WebSocket connection was lost") from exc
        answer = await self._answer(ref, answer_future, loop.time())
        if answer.get("type") == "error":
            raise error_from_answer(None, answer)
        return answer

    async def _answer(
        self, ref: int, answer_future: asyncio.Future[dict[str, Any]], sent: float
    ) -> dict[str, Any]:
        timeout = self.timeout
        if timeout is None:
            return await answer_future
        loop = asyncio.get_running_loop()
        while True:
            if answer_future.done():  # also with an error, which may be a ServerTimeout
                return answer_future.result()
            silent = loop.time() - max(sent, self._heard)
            if silent >= timeout:
                raise self._timed_out(f"sent no answer to request {ref} of a firing session")
            try:
                return await asyncio.wait_for(asyncio.shield(answer_future), timeout - silent)
            except TimeoutError:
                continue  # the future's own error, or the wait's: told apart above

    def _timed_out(self, what: str) -> ServerTimeout:
        """The session ends: every call waiting and every later one raise the same error."""
        if not isinstance(self._broken, ServerTimeout):
            error = self._broken = ServerTimeout(self.url, what, self.timeout or 0)
            waiting_now, self._waiting = list(self._waiting.values()), {}
            for waiting in waiting_now:
                if not waiting.done():
                    waiting.set_exception(error)
            self._ws.transport.abort()  # no closing handshake with a server that does nothing
        return self._broken

    async def _read(self) -> None:
        """Hand each answer to the request with its ``ref``, until the connection ends."""
        error: LinkServerError
        loop = asyncio.get_running_loop()
        try:
            while True:
                answer = decode(await self._ws.recv())
                self._heard = loop.time()
                ref = answer.get("ref")
                if ref is None:
                    continue  # not an answer
                waiting = self._waiting.pop(ref, None)
                if waiting is None:
                    error = ProtocolError(f"an answer to no request in flight: {str(answer)[:200]}")
                    break
                if not waiting.done():  # its caller may have been cancelled
                    waiting.set_result(answer)
        except (ConnectionClosed, OSError) as exc:
            error = ServerUnavailable(self.url, "the WebSocket connection was lost")
            error.__cause__ = exc
        except LinkServerError as exc:
            error = exc
        if self._broken is None:
            self._broken = error
        waiting_now, self._waiting = list(self._waiting.values()), {}
        for waiting in waiting_now:
            if not waiting.done():
                waiting.set_exception(self._broken)

    async def fire(
        self, context: str, event: str, data: Any = None, *, level: Any = None, durable: bool = False
    ) -> int:
        message = {"type": "fire", **fire_item(context, event, data, level)}
        if durable:
            message["durable"] = True
        return int(expect(await self._request(message), "id"))

    async def fire_batch(
        self, events: Iterable[BatchItem], durable: bool = False
    ) -> list[int | LinkServerError]:
        message: dict[str, Any] = {"type": "fire_batch", "events": batch_items(events)}
        if durable:
            message["durable"] = True
        return parse_results(expect(await self._request(message), "results"), "id")

    async def close(self) -> None:
        await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> AsyncFireSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Raise:
    """What a pushed message raised, for the reader to raise in its turn."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


# Flow control: a subscription stops reading its socket with this many items waiting for
# its reader, and reads again once they are down to LOW. websockets' own default is 16
# messages waiting (and 4), where a message of a batched subscription may hold hundreds of
# events; the server's queue per session holds 1,000.
HIGH, LOW = 1024, 256


class AsyncSubscription:
    """Events of one subscription, reconnecting inside ``__anext__`` with backoff when the link drops.

    Each message is turned into events as it arrives (:class:`~linkserver.client.feed.FeedConnection`
    calls back in the event loop's read callback), so ``__anext__`` only takes the next one from a
    queue, waiting when there is none; the socket is not read while :data:`HIGH` items wait.
    """

    def __init__(
        self,
        client: AsyncClient,
        state: SubscriptionState,
        on_gap: GapHandler | None,
        yield_gaps: bool,
        backoff: Backoff,
    ) -> None:
        self._client = client
        self.state = state
        self._on_gap = on_gap
        self._yield_gaps = yield_gaps
        self._backoff = backoff
        self._ws: FeedConnection | None = None
        # received, not yet handed out; _Raise: what the message there raised
        self._items: collections.deque[Event | Gap | _Raise] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._refs = itertools.count(1)
        self._opened = False
        self._closed = False
        self.reconnects = 0

    @property
    def last_id(self) -> int | None:
        return self.state.last_id

    @property
    def gaps(self) -> list[Gap]:
        return self.state.gaps

    async def _connect(self) -> None:
        ws = await self._client.connect()
        ref = next(self._refs)
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state, items = self.state, self._items

        def before_answer(raw: str | bytes) -> None:
            if answered.done():
                return
            try:
                message = decode(raw)
                if message.get("ref") == ref:
                    state.confirm(message, ref)
                    ws.on_message = self._taker(ws)
                    self._ws, self._paused = ws, False  # from now on lost() sees it go
                    answered.set_result(None)
                else:
                    items.extend(state.receive(message))  # resumed events before the answer
            except Exception as exc:  # noqa: BLE001 - raised by _connect
                answered.set_exception(exc)

        def lost() -> None:
            if not answered.done():
                answered.set_exception(ws.protocol.close_exc)
            if self._ws is ws:
                self._ws = None
                state.disconnected()
            self._wake()

        ws.on_message, ws.on_lost = before_answer, lost
        try:
            await ws.send(json.dumps(state.subscribe_message(ref)))
            await asyncio.wait_for(answered, self._client.timeout)
        except BaseException:
            if not answered.done():
                answered.cancel()  # lost() leaves it be
            if self._ws is ws:
                self._ws = None
                state.disconnected()
            ws.on_message = None
            await ws.close()
            raise

    def _taker(self, ws: FeedConnection) -> Any:
        """``ws``'s ``on_message`` once subscribed: the message's items to the queue."""
        receive, items = self.state.receive_text, self._items

        def take(raw: str | bytes) -> None:
            try:
                items.extend(receive(raw))
            except Exception as exc:  # noqa: BLE001 - the reader raises it
                items.append(_Raise(exc))
            if not items:
                return
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if len(items) >= HIGH and not self._paused and self._ws is ws:
                self._paused = True
                ws.pause_reading()

        return take

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def open(self) -> AsyncSubscription:
        """Subscribe now (idempotent); raises what the server answered, e.g. an invalid filter."""
        if not self._opened:
            self._opened = True
            await self._connect()
        return self

    def __await__(self) -> Generator[Any, None, AsyncSubscription]:
        return self.open().__await__()

    async def _reconnect(self) -> None:
        self._backoff.reset()
        while not self._closed:
            await asyncio.sleep(self._backoff.next())
            try:
                await self._connect()
            except RETRYABLE as exc:
                log.debug("reconnect attempt %d failed: %s", self._backoff.attempts, exc)
                continue
            self.reconnects += 1
            return

    def __aiter__(self) -> AsyncSubscription:
        return self

    async def __anext__(self) -> Any:
        if not self._opened:
            await self.open()
        items = self._items
        while True:
            if not items:
                if self._closed:
                    raise StopAsyncIteration
                if self._ws is None:
                    await self._reconnect()
                    continue
                if self._waiter is not None:  # as websockets' recv() refuses a second reader
                    raise RuntimeError("another task is already waiting for this subscription's next event")
                waiter = self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await waiter
                finally:
                    if self._waiter is waiter:
                        self._waiter = None
                continue
            item = items.popleft()
            if self._paused and len(items) <= LOW:
                self._paused = False
                if self._ws is not None:
                    self._ws.resume_reading()
            if type(item) is _Raise:
                raise item.error
            if isinstance(item, Gap):
                if self._on_gap is not None:
                    self._on_gap(item)
                if not self._yield_gaps:
                    continue
            return item

    async def aclose(self) -> None:
        self._closed = True
        self._client._subscriptions.discard(self)
        ws = self._ws
        if ws is not None:
            await ws.close()
        self._wake()

    async def __aenter__(self) -> AsyncSubscription:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
