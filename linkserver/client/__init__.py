"""Clients of a running LinkServer: blocking and asyncio, over the v1 network API.

See docs/client.md. Server errors come back as the LinkServer exception of
the same name (``ContextNotFound``, ``DataTableError``...); the client's own
are below :class:`ClientError`.
"""

from __future__ import annotations

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
    ServerUnavailable,
    TooLarge,
)
from linkserver.client.stream import Backoff
from linkserver.client.sync import Client
from linkserver.client.sync_ws import FireSession, Subscription
from linkserver.client.transport import DEFAULT_URL, HistoryPage
from linkserver.server.delivery import Gap

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
    "AuthenticationFailed",
    "RequestError",
    "BadRequest",
    "NotFound",
    "Conflict",
    "TooLarge",
    "ServerError",
    "ProtocolError",
]
