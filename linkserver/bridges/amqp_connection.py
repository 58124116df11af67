"""One pika connection kept open in a thread of its own, reconnecting with back-off.

Both sides of the AMQP bridge (publishing, consuming) run on a
:class:`Connector`: a pika ``SelectConnection`` whose I/O loop runs in its
thread; other threads hand it work with :meth:`Connector.call` (pika's
``add_callback_threadsafe``). When the broker is unreachable, refuses the
credentials or closes the connection, the problem is logged in words an
operator can act on (host and port, user, never the password), counted by
kind in :attr:`Connector.problems` (the bridges' metric
``linkserver_bridge_connection_problems_total``), and the connector tries
again after a delay doubling up to ``max_delay``.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.select_connection import SelectConnection

log = logging.getLogger("linkserver.bridges.amqp")
# pika logs every lost or refused connection at ERROR with a traceback; the connector says the
# same once, in an operator's words (and then every 20th attempt), so pika's own lines go.
logging.getLogger("pika").setLevel(logging.CRITICAL)

FIRST_DELAY = 0.2
MAX_DELAY = 5.0  # as pika and the Java client recover: a restarted broker is found within 5 s


def describe_url(parameters: pika.URLParameters) -> str:
    """``user@host:port/vhost``, without the password."""
    user = getattr(parameters.credentials, "username", "?")
    return f"{user}@{parameters.host}:{parameters.port}/{parameters.virtual_host}"


def explain(error: BaseException, where: str) -> str:
    """A connection error in an operator's words."""
    return classify(error, where)[1]


def classify(error: BaseException, where: str) -> tuple[str, str]:
    """(kind, the error in an operator's words): the kind labels the problems metric."""
    if isinstance(error, pika.exceptions.ProbableAuthenticationError | pika.exceptions.AuthenticationError):
        return "credentials", (
            f"RabbitMQ at {where} refused the credentials (check user and password in the bridge's url)"
        )
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        return "access", (
            f"RabbitMQ at {where} denied access to the virtual host (check the url's vhost and permissions)"
        )
    if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
        return "closed", f"RabbitMQ at {where} closed the connection: {error.reply_code} {error.reply_text}"
    if isinstance(error, pika.exceptions.AMQPConnectionError):
        return "unreachable", f"cannot reach RabbitMQ at {where}: {error!r}"
    return "failed", f"connection to RabbitMQ at {where} failed: {error!r}"


class Connector:
    """Keeps one connection open until :meth:`stop`; ``on_open(connection)`` sets it up
    (channels, declarations), ``on_lost(reason)`` is told each time it goes."""

    def __init__(
        self,
        name: str,
        url: str,
        on_open: Callable[[SelectConnection], None],
        on_lost: Callable[[str], None],
        *,
        heartbeat: int = 30,
        max_delay: float = MAX_DELAY,
        what: str | None = None,
    ) -> None:
        self.name = name
        self.what = what or f"bridge {name}"  # how the log lines name it
        self.parameters = pika.URLParameters(url)
        self.parameters.heartbeat = heartbeat
        self.parameters.connection_attempts = 1
        self.parameters.socket_timeout = 5
        self.where = describe_url(self.parameters)
        self._on_open = on_open
        self._on_lost = on_lost
        self.max_delay = max_delay
        self.connection: SelectConnection | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._delay = FIRST_DELAY
        self._failures = 0
        self.last_error = ""
        # Failed attempts by kind (classify's, or the owner's: "exchange", "queue", "channel")
        self.problems: collections.Counter[str] = collections.Counter()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"linkserver-amqp-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        connection = self.connection
        if connection is not None:
            try:
                connection.ioloop.add_callback_threadsafe(self._close)
            except Exception:  # the loop is gone already
                log.debug("closing the connection of %s", self.name, exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)

    def call(self, callback: Callable[[], Any]) -> bool:
        """Run ``callback`` in the connection's thread; False when there is no connection."""
        connection = self.connection
        if connection is None or not connection.is_open:
            return False
        try:
            connection.ioloop.add_callback_threadsafe(callback)
        except Exception:  # closed under us
            return False
        return True

    def close_connection(self) -> None:
        """Close the current connection (it is opened again, as after any loss)."""
        self.call(self._close)

    def opened(self) -> None:
        """Called by the owner once the connection is fully set up: resets the back-off."""
        if self._failures:
            log.info("%s: connected to RabbitMQ at %s again", self.what, self.where)
        self._failures = 0
        self._delay = FIRST_DELAY
        self.last_error = ""

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def failed(self, reason: str, kind: str = "setup") -> None:
        """The owner's setup failed (an exchange of the wrong type, a missing queue): close and
        try again later, saying why; ``kind`` labels it in :attr:`problems`."""
        if self._stopping.is_set():
            return
        self._report(reason, kind)
        self.call(self._close)

    def _close(self) -> None:
        connection = self.connection
        if connection is not None and not (connection.is_closing or connection.is_closed):
            connection.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            connection = SelectConnection(
                self.parameters,
                on_open_callback=self._on_open,
                on_open_error_callback=self._open_failed,
                on_close_callback=self._closed,
            )
            self.connection = connection
            try:
                connection.ioloop.start()
            except Exception:
                log.exception("%s: the AMQP connection's loop failed", self.what)
            self.connection = None
            if self._stopping.is_set():
                break
            self._stopping.wait(self._delay)
            self._delay = min(self._delay * 2, self.max_delay)

    def _open_failed(self, connection: SelectConnection, error: BaseException) -> None:
        self._report(*reversed(classify(error, self.where)))
        self._on_lost(self.last_error)
        connection.ioloop.stop()

    def _closed(self, connection: SelectConnection, error: BaseException) -> None:
        if not self._stopping.is_set() and not self.last_error:  # not said yet (a setup failure was)
            self._report(*reversed(classify(error, self.where)))
        self._on_lost(self.last_error or explain(error, self.where))
        connection.ioloop.stop()

    def _report(self, reason: str, kind: str) -> None:
        self.problems[kind] += 1
        self._failures += 1
        self.last_error = reason
        # Say it the first time and then now and again, not at every retry.
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning(
                "%s: %s; retrying every %.0f s at most (attempt %d)",
                self.what,
                reason,
                self.max_delay,
                self._failures,
            )
        else:
            log.debug("%s: %s (attempt %d)", self.what, reason, self._failures)
