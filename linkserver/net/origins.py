"""The WebSocket ``Origin`` check: a web page elsewhere must not ride a browser's credentials.

Browsers send ``Origin`` with every WebSocket handshake; other clients
(the shell, the Python clients, controllers) usually send none and are
always let in. An origin is allowed when it is in ``allowed``
(``scheme://host[:port]``, lower case; ``*`` allows all) or, with nothing
configured or not listed, when its host and port are those the client
connected to (the ``Host`` header): the server's own pages. ``null`` and
anything that is not an ``http(s)`` origin is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_port(scheme: str, netloc: str) -> tuple[str, int | None] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...] = ()) -> bool:
    """True if a handshake with ``Origin: origin`` to ``Host: host`` may proceed."""
    if origin is None:
        return True
    text = origin.strip().lower().rstrip("/")
    if "*" in allowed or text in allowed:
        return True
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or host is None:
        return False  # 'null' (a file, a sandbox) or something that is no origin
    mine = _host_port("https" if parts.scheme == "https" else "http", host.strip().lower())
    theirs = _host_port(parts.scheme, parts.netloc)
    if mine is None or theirs is None:
        return False
    # The scheme is not compared (behind a TLS proxy the page is https, the hop to us http);
    # host and port are. A proxy that rewrites Host needs its public origin in 'allowed_origins'.
    return mine == theirs


# -- the browser's token -----------------------------------------------------------------

SUBPROTOCOL = "linkserver.v1"
"""A browser can set no header on a WebSocket; the web console offers ``Sec-WebSocket-Protocol:
linkserver.v1, bearer.TOKEN`` instead of putting its token in the URL (where logs keep it)."""


def _offered(connection: HTTPConnection) -> list[str]:
    return [p.strip() for p in connection.headers.get("sec-websocket-protocol", "").split(",")]


def protocol_token(connection: HTTPConnection) -> str | None:
    """The token of a ``linkserver.v1, bearer.TOKEN`` handshake, or None."""
    offered = _offered(connection)
    if SUBPROTOCOL not in offered:
        return None
    return next((p[len("bearer.") :] for p in offered if p.startswith("bearer.") and len(p) > 7), None)


def chosen_protocol(connection: HTTPConnection) -> str | None:
    """The subprotocol the server accepts with: ``linkserver.v1`` when offered (a browser fails
    a handshake that offered protocols and got none back)."""
    return SUBPROTOCOL if SUBPROTOCOL in _offered(connection) else None
