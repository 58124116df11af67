"""Clients of a running LinkServer: blocking and asyncio, over the v1 network API.

See docs/client.md. Server errors come back as the LinkServer exception of
the same name (``ContextNotFound``, ``DataTableError``...); the client's own
are below :class:`ClientError`.

Names are imported on first use: ``from linkserver.client import Client``
does not load asyncio and websockets, which a one-shot HTTP call (the CLI's
``fire`` and ``history``) never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linkserver._lazy import lazy_exports

if TYPE_CHECKING:
    from linkserver.client.aio import AsyncClient, AsyncFireSession, AsyncSubscription
    from linkserver.client.errors import (
        AuthenticationFailed,
        BadRequest,
        ClientError,
        Conflict,
        NotFound,
        ProtocolError,
        RequestError,
        ServerError,
        ServerTimeout,
        ServerUnavailable,
        TooLarge,
    )
    from linkserver.client.stream import Backoff
    from linkserver.client.sync import Client
    from linkserver.client.sync_ws import FireSession, Subscription
    from linkserver.client.transport import DEFAULT_URL, HistoryPage
    from linkserver.typing import Gap

_ERRORS = "linkserver.client.errors"
_WHERE = {
    "Client": "linkserver.client.sync",
    "AsyncClient": "linkserver.client.aio",
    "DEFAULT_URL": "linkserver.client.transport",
    "HistoryPage": "linkserver.client.transport",
    "Subscription": "linkserver.client.sync_ws",
    "AsyncSubscription": "linkserver.client.aio",
    "FireSession": "linkserver.client.sync_ws",
    "AsyncFireSession": "linkserver.client.aio",
    "Gap": "linkserver.typing",
    "Backoff": "linkserver.client.stream",
    **dict.fromkeys(
        (
            "ClientError",
            "ServerUnavailable",
            "ServerTimeout",
            "AuthenticationFailed",
            "RequestError",
            "BadRequest",
            "NotFound",
            "Conflict",
            "TooLarge",
            "ServerError",
            "ProtocolError",
        ),
        _ERRORS,
    ),
}

__all__ = [
    # clients
    "Client",
    "AsyncClient",
    "DEFAULT_URL",
    # what they hand out
    "HistoryPage",
    "Subscription",
    "AsyncSubscription",
    "FireSession",
    "AsyncFireSession",
    "Gap",
    "Backoff",
    # errors of the client itself (server errors keep their LinkServer classes)
    "ClientError",
    "ServerUnavailable",
    "ServerTimeout",
    "AuthenticationFailed",
    "RequestError",
    "BadRequest",
    "NotFound",
    "Conflict",
    "TooLarge",
    "ServerError",
    "ProtocolError",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
