"""The WebSocket parts of the blocking client: a firing session and a reconnecting subscription."""

from __future__ import annotations

import collections
import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from linkserver.client.errors import ProtocolError, ServerTimeout, ServerUnavailable, error_from_answer
from linkserver.client.stream import RETRYABLE, Backoff, SubscriptionState, decode
from linkserver.client.transport import BatchItem, batch_items, expect, fire_item, parse_results
from linkserver.core.errors import LinkServerError
from linkserver.core.events import Event
from linkserver.typing import Gap

if TYPE_CHECKING:
    from linkserver.client.pipe import PipeConnection
    from linkserver.client.sync import Client

log = logging.getLogger("linkserver.client")

GapHandler = Callable[[Gap], object]
_dumps = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per message


class FireSession:
    """Firing over one WebSocket: answers come back in request order, so requests can be pipelined.

    ``connection`` is a :class:`~linkserver.client.pipe.PipeConnection` (what
    :meth:`Client.session` makes: several messages per write, no reader
    thread) or anything with ``send``, ``recv`` and ``close``.
    """

    def __init__(self, connection: PipeConnection | ClientConnection, url: str = "") -> None:
        self._ws = connection
        self._refs = itertools.count(1)
        self.url = url
        self._broken: ServerTimeout | None = None

    def _timed_out(self, what: str) -> ServerTimeout:
        """The session ends: its answers can no longer be told apart from late ones."""
        self._broken = ServerTimeout(self.url, what, getattr(self._ws, "timeout", None) or 0)
        try:
            self._ws.close()
        except OSError:
            pass
        return self._broken

    def _send(self, message: dict[str, Any]) -> int:
        ref = message["ref"] = next(self._refs)
        self._send_texts([_dumps(message)])
        return ref

    def _send_many(self, messages: list[dict[str, Any]]) -> list[int]:
        """Send each as a message of its own, in one write where the connection can."""
        refs = []
        for message in messages:
            refs.append(next(self._refs))
            message["ref"] = refs[-1]
        self._send_texts([_dumps(message) for message in messages])
        return refs

    def _send_texts(self, texts: list[str]) -> None:
        if self._broken is not None:
            raise self._broken
        try:
            send_many = getattr(self._ws, "send_many", None)
            if send_many is not None:
                send_many(texts)
            else:
                for text in texts:
                    self._ws.send(text)
        except TimeoutError as exc:
            raise self._timed_out("read none of the requests sent") from exc
        except (ConnectionClosed, OSError) as exc:
            raise ServerUnavailable(self.url, "the WebSocket connection was lost") from exc

    def _buffered(self) -> int:
        """Answers already received: reading them does not wait."""
        return getattr(self._ws, "buffered", 0)

    def _answer(self, ref: int) -> dict[str, Any]:
        while True:
            if self._broken is not None:
                raise self._broken
            try:
                message = decode(self._ws.recv())
            except TimeoutError as exc:
                raise self._timed_out(f"sent no answer to request {ref} of a firing session") from exc
            except (ConnectionClosed, OSError) as exc:
                raise ServerUnavailable(self.url, "the WebSocket connection was lost") from exc
            if message.get("ref") == ref:
                return message
            if message.get("ref") is not None:
                raise ProtocolError(f"expected the answer to request {ref}, got {str(message)[:200]}")

    def fire(
        self, context: str, event: str, data: Any = None, *, level: Any = None, durable: bool = False
    ) -> int:
        """Fire one event; returns its id or raises the server's error."""
        message = {
            "type": "fire",
            **fire_item(context, event, data, level),
            **({"durable": True} if durable else {}),
        }
        answer = self._answer(self._send(message))
        if answer.get("type") == "error":
            raise error_from_answer(None, answer)
        return int(expect(answer, "id"))

    def fire_many(
        self, events: Iterable[BatchItem], *, durable: bool = False, window: int = 128
    ) -> Iterator[int | LinkServerError]:
        """Fire each event in a message of its own, up to ``window`` unanswered at once;
        yields each event's id, or the server's error for it, in order. With ``durable``
        each answer waits for the commit; the server commits those in flight together."""
        pending: collections.deque[int] = collections.deque()
        extra = {"durable": True} if durable else {}
        items = iter(batch_items(events))
        while True:
            # Fill the window in one write, then take one answer and those already received:
            # the server's answers to a burst arrive together, so the next burst is as large.
            burst = [
                {"type": "fire", **item, **extra} for item in itertools.islice(items, window - len(pending))
            ]
            if burst:
                pending.extend(self._send_many(burst))
            if not pending:
                return
            yield self._fired(pending.popleft())
            while pending and self._buffered():
                yield self._fired(pending.popleft())

    def _fired(self, ref: int) -> int | LinkServerError:
        answer = self._answer(ref)
        if answer.get("type") == "error":
            return error_from_answer(None, answer)
        return int(expect(answer, "id"))

    def fire_batch(self, events: Iterable[BatchItem], durable: bool = False) -> list[int | LinkServerError]:
        return next(self.fire_batches([events], durable=durable))

    def fire_batches(
        self, batches: Iterable[Iterable[BatchItem]], *, durable: bool = False, window: int = 4
    ) -> Iterator[list[int | LinkServerError]]:
        """Send batches with up to ``window`` unanswered at once; yields each batch's results in order."""
        pending: list[int] = []
        for batch in batches:
            message = {
                "type": "fire_batch",
                "events": batch_items(batch),
                **({"durable": True} if durable else {}),
            }
            pending.append(self._send(message))
            if len(pending) >= window:
                yield self._batch_results(pending.pop(0))
        while pending:
            yield self._batch_results(pending.pop(0))

    def _batch_results(self, ref: int) -> list[int | LinkServerError]:
        answer = self._answer(ref)
        if answer.get("type") == "error":
            raise error_from_answer(None, answer)
        return parse_results(expect(answer, "results"), "id")

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> FireSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscription:
    """An iterator of events from one WebSocket subscription, read by a background thread.

    Iteration ends after :meth:`close`; an error that reconnecting cannot
    fix (credentials refused, the subscription rejected) is raised from the
    iterator. ``last_id``, ``reconnects`` and ``gaps`` say what happened.
    """

    def __init__(
        self,
        client: Client,
        state: SubscriptionState,
        *,
        on_gap: GapHandler | None,
        yield_gaps: bool,
        backoff: Backoff,
        queue_size: int,
    ) -> None:
        self._client = client
        self.state = state
        self._on_gap = on_gap
        self._yield_gaps = yield_gaps
        self._backoff = backoff
        self._items: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._closed = threading.Event()
        self._done = threading.Event()  # set when the reader thread ended
        self._ws: ClientConnection | None = None
        self._thread: threading.Thread | None = None
        self._refs = itertools.count(1)
        self.reconnects = 0
        self.ended = False  # True once get() met the end: closed, or ended by an error
        self.connected = threading.Event()

    @property
    def last_id(self) -> int | None:
        return self.state.last_id

    @property
    def gaps(self) -> list[Gap]:
        return self.state.gaps

    def _subscribe_on(self, ws: ClientConnection) -> None:
        ref = next(self._refs)
        ws.send(json.dumps(self.state.subscribe_message(ref)))
        while True:
            answer = decode(ws.recv(timeout=self._client.timeout))
            if answer.get("ref") == ref:
                self.state.confirm(answer, ref)
                return
            for item in self.state.receive(answer):  # pushes before the answer (resumed events)
                self._push(item)

    def _connect(self) -> None:
        ws = self._client.connect()
        try:
            self._subscribe_on(ws)
        except BaseException:
            ws.close()
            raise
        self._ws = ws
        self.connected.set()

    def _open(self) -> None:
        try:
            self._connect()
        except TimeoutError as exc:
            raise ServerUnavailable(self._client.url, "no answer to subscribe") from exc
        self._thread = threading.Thread(target=self._run, name="linkserver-subscription", daemon=True)
        self._thread.start()

    def _push(self, item: Any) -> None:
        while not self._closed.is_set():
            try:
                self._items.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                ws = self._ws
                try:
                    assert ws is not None
                    for raw in ws:
                        for item in self.state.receive_text(raw):
                            self._push(item)
                except (ConnectionClosed, OSError):
                    pass
                if self._closed.is_set():
                    break
                self.connected.clear()
                self.state.disconnected()
                log.info(
                    "subscription %s/%s lost its connection; reconnecting", self.state.mask, self.state.event
                )
                self._reconnect()
        except LinkServerError as exc:
            self._push(exc)
        except Exception as exc:  # a bug: end the iteration with it rather than hang
            log.exception("subscription reader failed")
            self._push(ProtocolError(f"the subscription failed: {exc!r}"))
        finally:
            self._done.set()

    def _reconnect(self) -> None:
        self._backoff.reset()
        while not self._closed.wait(self._backoff.next()):
            try:
                self._connect()
            except RETRYABLE as exc:
                log.debug("reconnect attempt %d failed: %s", self._backoff.attempts, exc)
                continue
            if self._closed.is_set():
                assert self._ws is not None
                self._ws.close()
                return
            self.reconnects += 1
            log.info("subscription resumed after id %s", self.state.last_id)
            return

    def get(self, timeout: float | None = None) -> Event | Gap | None:
        """The next Event (or Gap, with ``yield_gaps``); None after ``timeout`` or once ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                if self._done.is_set():  # the reader is gone and everything it read was taken
                    self.ended = True
                    return None
                wait = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
                if wait <= 0:
                    return None
                try:
                    item = self._items.get(timeout=wait)
                except queue.Empty:
                    continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Gap):
                if self._on_gap is not None:
                    self._on_gap(item)
                if not self._yield_gaps:
                    continue
            return item  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self.get()
        if item is None:
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop receiving; the iterator ends after the items already received."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._client._forget(self)
        if self._ws is not None:
            self._ws.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._thread is None:
            self._done.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
