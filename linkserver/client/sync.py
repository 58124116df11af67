"""The blocking client: HTTP calls over httpx, subscriptions over a WebSocket in a thread.

with Client("http://127.0.0.1:7341") as client:     # local: admin credentials file
    client.fire("devices.plc7", "measurement", [{"quantity": "t", "value": 21.5}])
    for event in client.subscribe("devices.**", "measurement"):
        print(event)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from linkserver.client.calls_sync import Calls
from linkserver.client.errors import AuthenticationFailed, ProtocolError, ServerUnavailable
from linkserver.client.transport import (
    default_url,
    endpoint,
    expect,
    resolve_credentials,
    response_error,
    tls_verify,
)
from linkserver.core.errors import BadRequest
from linkserver.core.levels import Level
from linkserver.wire.encode import encode

if TYPE_CHECKING:
    # WebSocket modules load on first use: a one-shot HTTP call (the CLI's fire, history)
    # should not pay for importing websockets and the subscription machinery.
    from websockets.sync.client import ClientConnection

    from linkserver.client.stream import Backoff
    from linkserver.client.sync_ws import FireSession, GapHandler, Subscription

MAX_MESSAGE = 16 * 1024 * 1024
_C = TypeVar("_C")


class Client(Calls):
    """A session with one LinkServer. Thread-safe; close it (or use ``with``) when done.

    Credentials: ``token``, else ``user`` and ``password`` (logged in on first
    use and again when the session expires), else ``$LINKSERVER_TOKEN``, else,
    for a server on this machine, the admin credentials file. Every method
    raises :class:`ServerUnavailable` when the server cannot be reached,
    :class:`AuthenticationFailed` on 401, and the server's own error class
    (``ContextNotFound``, ``DataTableError``...) for what it refused. The HTTP calls
    (``fire``, ``history``, ``add_user``...) are :class:`~linkserver.client.calls_sync.Calls`.
    """

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
        self._http = httpx.Client(
            base_url=self.endpoint.api, timeout=timeout, verify=tls_verify(self.endpoint)
        )
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self.timeout = timeout

    # -- plumbing ----------------------------------------------------------

    def login(self) -> str:
        """Log in with the user and password; returns the new session token."""
        body = {"user": self.credentials.user, "password": self.credentials.password}
        answer = self._send("POST", "/login", body, None, token=None)
        with self._lock:
            self._token = str(expect(answer, "token"))
            return self._token

    def token(self) -> str | None:
        """The token in use, logging in first if needed (None when there are no credentials)."""
        with self._lock:
            token = self._token
        if token is None and self.credentials.user is not None:
            token = self.login()
        return token

    def _can_login(self) -> bool:
        return self.credentials.user is not None

    def _send(self, method: str, path: str, body: Any, params: Any, *, token: str | None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = None
        if body is not None:
            content, headers["Content-Type"] = encode(body), "application/json"
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
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

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        token = self.token()
        try:
            return self._send(method, path, body, params, token=token)
        except AuthenticationFailed:
            if not self._can_login():
                raise
            return self._send(method, path, body, params, token=self.login())  # session expired

    def metrics(self) -> str:
        """The server's ``/metrics`` page, Prometheus text (needs observer on root)."""
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            response = self._http.get(f"{self.url}/metrics", headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnavailable(self.url, type(exc).__name__) from exc
        if response.status_code >= 400:
            raise response_error(response.status_code, response.text)
        return response.text

    def logout(self) -> None:
        with self._lock:
            token, self._token = self._token, None
        if token is not None and self._can_login():
            self._send("POST", "/logout", None, None, token=token)

    # -- WebSocket -------------------------------------------------------------

    def connect(self) -> ClientConnection:
        """A new authenticated WebSocket connection (re-logging in once on 401)."""
        from websockets.sync.client import connect

        return self._open(
            lambda url: connect(url, open_timeout=self.timeout, max_size=MAX_MESSAGE, compression=None)
        )

    def _open(self, make: Callable[[str], _C]) -> _C:
        from linkserver.client.stream import connect_error, websocket_url

        for attempt in (0, 1):
            url = websocket_url(self.endpoint.websocket, self.token())
            try:
                return make(url)
            except Exception as exc:  # noqa: BLE001 - mapped below
                error = connect_error(exc, self.url)
                if isinstance(error, AuthenticationFailed) and attempt == 0 and self._can_login():
                    self.login()
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    def session(self) -> FireSession:
        """A WebSocket session for fast firing (answers carry ids, not whole events); its
        connection has no reader thread (linkserver/client/pipe.py)."""
        from linkserver.client.pipe import PipeConnection
        from linkserver.client.sync_ws import FireSession

        return FireSession(
            self._open(
                lambda url: PipeConnection(
                    url, open_timeout=self.timeout, timeout=self.timeout, max_size=MAX_MESSAGE
                )
            ),
            self.url,
        )

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
        queue_size: int = 10_000,
    ) -> Subscription:
        """Subscribe over a WebSocket; iterate the result for Events (and Gaps with ``yield_gaps``).

        Returns once the server confirmed (raises its error, e.g. a bad
        filter, otherwise). A lost connection is reopened with ``backoff``
        and resubscribed from the last event id seen.
        """
        from linkserver.client.stream import Backoff, SubscriptionState
        from linkserver.client.sync_ws import Subscription

        state = SubscriptionState(mask, event, filter=filter, min_level=min_level, resume_from=resume_from)
        subscription = Subscription(
            self,
            state,
            on_gap=on_gap,
            yield_gaps=yield_gaps,
            backoff=backoff or Backoff(),
            queue_size=queue_size,
        )
        subscription._open()
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def close(self) -> None:
        """Close every subscription and the HTTP connections."""
        with self._lock:
            subscriptions, self._subscriptions = list(self._subscriptions), set()
        for subscription in subscriptions:
            subscription.close()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
