"""``GET /metrics``: the server's metrics plus the network API's own, and who may read them.

Access (``server.metrics`` in the configuration, docs/server.md):

- ``observer`` (the default): a bearer token (session or API token) whose
  principal may observe the root context. The families are counts per event
  name over the whole tree, so reading them needs what reading the whole
  tree needs; a Prometheus scraper gets an API token
  (``linkserver token create-token prometheus --grant '**=observer'``) in
  its ``authorization: {credentials_file: ...}``.
- ``open``: anyone who reaches the port, for a scraper on a trusted network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from linkserver.core.errors import PermissionDenied
from linkserver.core.levels import Permission
from linkserver.core.paths import ROOT
from linkserver.core.tallies import Tally
from linkserver.net import codec
from linkserver.net.auth import Authenticator
from linkserver.net.codec import AuthenticationFailed
from linkserver.server import metrics
from linkserver.server.metrics import PREFIX

if TYPE_CHECKING:
    from linkserver.server.app import LinkServer


class NetStats:
    """Counters of the network API, kept by the transport (app.py) and read at scrape time."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth
        self.websockets = 0  # changed on the event loop only
        self.login_failures = Tally()  # POST /login refused
        self.token_failures = Tally()  # requests and handshakes with a missing, unknown or expired token

    def collect(self) -> Iterator[Metric]:
        sessions = GaugeMetricFamily(
            PREFIX + "sessions", "Open sessions: login sessions and WebSocket connections.", labels=["kind"]
        )
        sessions.add_metric(["login"], self.auth.sessions.count())
        sessions.add_metric(["websocket"], self.websockets)
        yield sessions
        failures = CounterMetricFamily(
            PREFIX + "authentication_failures",
            "Refused credentials: wrong user or password at login, bad bearer tokens.",
            labels=["kind"],
        )
        failures.add_metric(["login"], self.login_failures.value)
        failures.add_metric(["token"], self.token_failures.value)
        yield failures


def metrics_route(
    server: LinkServer, stats: NetStats, token_of: Callable[[HTTPConnection], str | None]
) -> Route:
    """``GET /metrics`` over ``server`` and ``stats``, readable as ``server.metrics`` says."""
    registry = metrics.registry(server, [stats.collect])
    open_access = server.config.metrics_access == "open"

    def authorize(token: str | None) -> None:
        principal = stats.auth.authenticate(token)
        if not principal.may(ROOT, Permission.OBSERVER):
            raise PermissionDenied(
                f"{principal.name} may not read /metrics: it needs observer on root, "
                f"{principal.name} has {principal.grants.level_for(ROOT)} (or set server.metrics: open)"
            )

    async def endpoint(request: Request) -> Response:
        try:
            if not open_access:
                await run_in_threadpool(authorize, token_of(request))
            body = await run_in_threadpool(metrics.exposition, registry)
        except Exception as exc:
            if isinstance(exc, AuthenticationFailed):
                stats.token_failures.add()
            status = codec.error_status(exc)
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"error": codec.error_body(exc)}, status_code=status, headers=headers)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return Route("/metrics", endpoint, methods=["GET"], name="GET /metrics")
