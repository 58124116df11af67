"""A TCP proxy on a loopback port, to take a shared broker away from one client only.

Tests and benchmarks point a bridge at ``proxy.url`` instead of the broker;
``proxy.set_available(False)`` cuts every connection through it and refuses
new ones (as an unreachable broker would), ``set_available(True)`` lets
them through again. The broker itself, which others use, keeps running.

``proxy.hold("up")`` (client to broker) or ``hold("down")`` (broker to client)
stops forwarding one direction: the bytes wait unread until ``release`` and
are lost if the connection is cut meanwhile, as packets in transit are when a
connection breaks (a publish the broker never saw, an acknowledgement the
client never saw).
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Direction = Literal["up", "down"]


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target``; one thread, non-blocking sockets."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._clients: set[socket.socket] = set()  # the accepted ends: what they send goes up
        self._held: set[str] = set()
        self._requests: list[tuple[str, bool, threading.Event]] = []
        self.available = True
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="linkserver-tcp-proxy", daemon=True)
        self._thread.start()

    @classmethod
    def for_url(cls, url: str, default_port: int = 5672) -> TcpProxy:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)

    def url_for(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def set_available(self, available: bool) -> None:
        with self._lock:
            self.available = available
        self._wake_w.send(b"x")

    def hold(self, direction: Direction) -> None:
        """Stop forwarding ``direction``; in force when this returns."""
        self._request(direction, True)

    def release(self, direction: Direction) -> None:
        """Forward ``direction`` again, the bytes held back first."""
        self._request(direction, False)

    def _request(self, direction: Direction, held: bool) -> None:
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        done = threading.Event()
        with self._lock:
            self._requests.append((direction, held, done))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise TimeoutError("the proxy thread did not answer within 5 s")

    def close(self) -> None:
        self._stopping = True
        self._wake_w.send(b"x")
        self._thread.join(5)
        for sock in list(self._peers):
            sock.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        while not self._stopping:
            for key, _ in self._selector.select(0.5):
                if key.data == "wake":
                    try:
                        self._wake_r.recv(1024)
                    except BlockingIOError:
                        pass
                    if not self.available:
                        self._cut_all()
                    self._apply_holds()
                elif key.fileobj is self._listener:
                    self._accept()
                else:
                    self._forward(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if not self.available:
            client.close()  # refused, as by a broker that is down
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._clients.add(client)
        self._peers[client], self._peers[upstream] = upstream, client
        for sock in (client, upstream):
            if self._direction(sock) not in self._held:
                self._selector.register(sock, selectors.EVENT_READ, "peer")

    def _direction(self, sock: socket.socket) -> str:
        """Where the bytes read from ``sock`` go."""
        return "up" if sock in self._clients else "down"

    def _apply_holds(self) -> None:
        """On the proxy thread: a held direction's sockets are not read (nor watched)."""
        with self._lock:
            requests, self._requests = self._requests, []
        for direction, held, done in requests:
            if held:
                self._held.add(direction)
            else:
                self._held.discard(direction)
            for sock in list(self._peers):
                if self._direction(sock) != direction:
                    continue
                watched = sock in self._selector.get_map()
                if held and watched:
                    self._selector.unregister(sock)
                elif not held and not watched:
                    self._selector.register(sock, selectors.EVENT_READ, "peer")
            done.set()

    def _forward(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        other = self._peers.get(sock)
        if not data or other is None:
            self._cut(sock)
            return
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._cut(sock)

    def _cut(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for each in (sock, other):
            if each is None:
                continue
            self._peers.pop(each, None)
            self._clients.discard(each)
            try:
                self._selector.unregister(each)
            except (KeyError, ValueError):
                pass
            each.close()

    def _cut_all(self) -> None:
        for sock in list(self._peers):
            self._cut(sock)
