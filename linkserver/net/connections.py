"""Open WebSocket connections, and ending them when their credentials stop being good.

Every connection is registered with the token it authenticated with. When
that token stops standing for the same principal, the connection is closed
(its subscriptions cancelled first, so nothing more is delivered or fired):

- ``4401`` (:data:`ENDED`) when the token no longer authenticates: logged
  out, expired, API token revoked, password changed, user removed;
- ``4403`` (:data:`REGRANTED`) when its grants changed: connecting again
  subscribes under the new grants.

Changes made through this server end connections at once (the
authenticator and the user directory tell :class:`Connections`);
:class:`Watcher` checks every half second for the rest: sessions that
expired, API tokens revoked by ``linkserver token`` (on any node), users changed by
another node, and re-checks every connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from linkserver.core.errors import HistoryUnavailable
from linkserver.core.permissions import Principal

log = logging.getLogger("linkserver.net")

ENDED, REGRANTED = 4401, 4403
MAX_REASON = 120  # a close frame's reason is at most 123 bytes
CHECK_INTERVAL = 0.5

Resolve = Callable[[str], Principal | None]


def _same_grants(a: Principal, b: Principal) -> bool:
    return a.is_component == b.is_component and sorted(a.grants.items()) == sorted(b.grants.items())


class Connection:
    """One open WebSocket: its token and principal, and how to end it from any thread."""

    def __init__(self, token: str, principal: Principal, on_end: Callable[[int, str], None]) -> None:
        self.token = token
        self.principal = principal
        self._on_end = on_end
        self.closing: tuple[int, str] | None = None
        self._lock = threading.Lock()

    def end(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason`` (once; later calls do nothing)."""
        with self._lock:
            if self.closing is not None:
                return
            encoded = reason.encode()[:MAX_REASON]
            self.closing = (code, encoded.decode("utf-8", "ignore"))
        log.info("closing the WebSocket of %s: %s", self.principal.name, reason)
        self._on_end(code, self.closing[1])


class Connections:
    """The open connections of one app. Thread-safe."""

    def __init__(self) -> None:
        self._open: set[Connection] = set()
        self._lock = threading.Lock()

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._open.add(connection)

    def discard(self, connection: Connection) -> None:
        with self._lock:
            self._open.discard(connection)

    def __len__(self) -> int:
        return len(self._open)

    def _all(self) -> list[Connection]:
        with self._lock:
            return list(self._open)

    def end_token(self, token: str, reason: str) -> None:
        """End the connections of ``token`` (it no longer authenticates)."""
        for connection in self._all():
            if connection.token == token:
                connection.end(ENDED, reason)

    def end_user(self, name: str, code: int, reason: str) -> None:
        """End the connections of user ``name`` (API tokens of the same name are not users)."""
        for connection in self._all():
            if connection.principal.name == name and not connection.principal.is_component:
                connection.end(code, reason)

    def recheck(self, resolve: Resolve, why: Callable[[Principal], str] | None = None) -> int:
        """End every connection whose token no longer gives the same principal; returns how many.
        ``why(principal)``: the reason told to a connection whose token gives none any more."""
        ended = 0
        # Once per token: many connections share one (a client's subscriptions, each its own
        # WebSocket), and this pass runs every CHECK_INTERVAL holding the GIL between lookups.
        resolved: dict[str, Principal | None] = {}
        for connection in self._all():
            token = connection.token
            if token in resolved:
                now = resolved[token]
            else:
                now = resolved[token] = resolve(token)
            if now is None:
                connection.end(ENDED, why(connection.principal) if why else "the token is no longer valid")
            elif now is not connection.principal and not _same_grants(now, connection.principal):
                connection.end(REGRANTED, f"the grants of {now.name} changed; connect again")
            else:
                continue
            ended += 1
        return ended


class Watcher:
    """A thread that runs ``check()`` every ``interval`` seconds while ``running()``."""

    def __init__(
        self, check: Callable[[], None], running: Callable[[], bool], interval: float = CHECK_INTERVAL
    ) -> None:
        self._check, self._running, self.interval = check, running, interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="linkserver-session-watcher", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def _run(self) -> None:
        failing = False
        while not self._stopping.wait(self.interval) and self._running():
            try:
                self._check()
            except HistoryUnavailable as exc:  # the database is unreachable: said once, retried
                if not failing:
                    log.warning("checking sessions failed: %s; retrying every %.1f s", exc, self.interval)
                failing = True
            except Exception:
                log.exception("checking sessions failed")
            else:
                if failing:
                    log.info("checking sessions again")
                failing = False
