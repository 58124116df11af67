"""The network API: a Starlette app over a running LinkServer (docs/protocol.md).

Every action goes through :class:`~linkserver.net.gateway.Gateway`, which
applies the caller's grants. Blocking work (firing, history, scrypt)
runs in worker threads; the WebSocket transport is a thin loop around
:class:`~linkserver.net.protocol.Session`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from linkserver.core.errors import LinkServerError, PermissionDenied, TooManyAttempts
from linkserver.core.events import Event
from linkserver.core.levels import Permission
from linkserver.core.permissions import Principal
from linkserver.history.api_tokens import TokenTable
from linkserver.net import codec
from linkserver.net.alarms_api import AlarmRoutes
from linkserver.net.audit import audited
from linkserver.net.auth import (
    ADMIN,
    ADMIN_HASH_FILE,
    ApiTokens,
    Authenticator,
    SessionStore,
    ThrottleSettings,
    check_password_hash,
    forget_admin_credentials,
    import_token_file,
)
from linkserver.net.codec import AuthenticationFailed, BadRequest, FireRequest, NotFound, TooLarge
from linkserver.net.connections import REGRANTED, Connection, Connections, Watcher
from linkserver.net.gateway import Gateway
from linkserver.net.inbox import Inbox
from linkserver.net.metrics import NetStats, metrics_route
from linkserver.net.openapi import openapi_document
from linkserver.net.origins import chosen_protocol, origin_allowed, protocol_token
from linkserver.net.protocol import Limits, Session
from linkserver.net.push import Pusher, waker_for
from linkserver.net.resources_api import ResourceRoutes
from linkserver.net.rules_api import RuleRoutes
from linkserver.net.throttle import ThrottleRule
from linkserver.net.tokens_api import TokenRoutes
from linkserver.net.users_api import UserRoutes, caller_token
from linkserver.server.app import MEMORY_URL, LinkServer
from linkserver.server.users import GRANTS, PASSWORD, REMOVED, UserChange, UserDirectory
from linkserver.web.app import console_routes
from linkserver.wire import decode, shapes
from linkserver.wire.routes import OPERATIONS, PREFIX, Operation

log = logging.getLogger("linkserver.net")

OBSERVER = Permission.OBSERVER
INBOX_SIZE = 1000  # messages read ahead of the one being handled, per WebSocket


# -- HTTP -------------------------------------------------------------------------------------


@attrs.define
class Call:
    """One HTTP request as the route functions see it (they run in worker threads): ``body``,
    ``query`` and ``args`` (path parameters) are decoded into their operation's shapes."""

    request: Request
    principal: Principal
    token: str | None
    body: Any = None
    query: Any = None
    args: Any = None

    @property
    def address(self) -> str | None:
        return self.request.client.host if self.request.client else None


def bearer(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def error_response(exc: BaseException) -> JSONResponse:
    status = codec.error_status(exc)
    if not isinstance(exc, LinkServerError):  # the answer says only "see its log": say it there
        log.error("request failed", exc_info=exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse({"error": codec.error_body(exc)}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request body has {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Work = Callable[[Call], Any]


class Api:
    """The HTTP routes and the WebSocket endpoint over one Gateway and Authenticator.

    Routes come from :data:`linkserver.wire.routes.OPERATIONS`: each operation's body, query
    and path parameters are decoded into its shapes before its handler (the method of the
    same name) runs, so a handler never sees a document that does not fit its declaration.
    """

    def __init__(
        self,
        gateway: Gateway,
        auth: Authenticator,
        limits: Limits,
        *,
        connections: Connections | None = None,
        allowed_origins: tuple[str, ...] = (),
    ) -> None:
        self.gateway, self.auth, self.limits = gateway, auth, limits
        self.access = gateway.server.access
        self.stats = NetStats(auth)
        self.connections = connections if connections is not None else Connections()
        self.allowed_origins = allowed_origins
        self.users_api = UserRoutes(self, gateway.server.users)  # the /users operations
        self.route_holders: tuple[Any, ...] = (
            self.users_api,
            ResourceRoutes(self, gateway.server.resources, gateway.server.jobs),
            RuleRoutes(self, gateway.server.rules),
            AlarmRoutes(self, gateway.server.alarms),
            TokenRoutes(self, gateway.server.history.api_tokens),
        )

    def endpoint(self, op: Operation, work: Work) -> Callable[[Request], Awaitable[Response]]:
        limit = self.limits.max_message_bytes

        async def endpoint(request: Request) -> Response:
            try:
                token = bearer(request)
                address = request.client.host if request.client else None
                principal = (
                    None if op.public else await run_in_threadpool(self.auth.authenticate, token, address)
                )
                args = (
                    decode.convert(
                        dict(request.path_params),
                        op.path_params,
                        f"the path {request.url.path!r}",
                        from_text=True,
                    )
                    if op.path_params is not None
                    else None
                )
                query = (
                    decode.params(request.query_params, op.query)
                    if op.query is not None
                    else _no_params(request)
                )
                body = None
                if op.body is not None:
                    body = decode.decode(await _read_body(request, limit), op.body, "the request body")
                call = Call(request, principal, token, body, query, args)  # type: ignore[arg-type]
                content = await run_in_threadpool(lambda: codec.dumps(work(call)))
            except Exception as exc:
                if isinstance(exc, AuthenticationFailed):
                    (self.stats.login_failures if op.public else self.stats.token_failures).add()
                return error_response(exc)
            return Response(content, status_code=op.status, media_type="application/json")

        return endpoint

    def routes(self) -> list[Route | WebSocketRoute]:
        by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
        for op in OPERATIONS:
            handler = getattr(self, op.name, None) or next(
                getattr(holder, op.name) for holder in self.route_holders if hasattr(holder, op.name)
            )
            # A change is recorded as an action event in the actor's context (net/audit.py).
            by_path.setdefault(op.url, {})[op.method] = self.endpoint(op, audited(self, op.name, handler))
        routes: list[Route | WebSocketRoute] = [_route(path, methods) for path, methods in by_path.items()]
        routes.append(WebSocketRoute(PREFIX + "/ws", _WebSocketEndpoint(self.websocket), name="websocket"))
        return routes

    # -- routes (in worker threads) ------------------------------------------------

    def login(self, call: Call) -> dict[str, Any]:
        body: shapes.LoginRequest = call.body
        session = self.auth.login(body.user, body.password, call.address)
        return {"token": session.token, "user": session.user, "expires": session.expires.isoformat()}

    def logout(self, call: Call) -> dict[str, Any]:  # its WebSocket connections end too
        if call.token:
            self.auth.logout(call.token, call.address)
        return {}

    def me(self, call: Call) -> dict[str, Any]:
        grants = {mask or "root": str(level) for mask, level in call.principal.grants.items()}
        return {"user": call.principal.name, "grants": grants, "component": call.principal.is_component}

    def tree(self, call: Call) -> dict[str, Any]:
        query: shapes.TreeQuery = call.query
        return self.gateway.tree_json(call.principal, query.path or "root", query.depth)

    def context(self, call: Call) -> dict[str, Any]:
        return self.gateway.context_json(call.principal, call.args.path)

    def add_context(self, call: Call) -> dict[str, Any]:
        body: shapes.NewContext = call.body
        context = self.gateway.add_context(
            call.principal,
            body.path,
            body.template,
            body.description,
            controller=body.controller,
            adopt=body.adopt,
        )
        return {"path": context.path}

    def remove_context(self, call: Call) -> dict[str, Any]:
        query: shapes.RemoveContextQuery = call.query
        removed = self.gateway.remove_context(call.principal, call.args.path, controller=query.controller)
        return {"removed": list(removed)}

    def fire(self, call: Call) -> dict[str, Any]:
        body: shapes.FireRequest = call.body
        return {"event": self.gateway.fire(call.principal, body, durable=body.durable).marshal()}

    def fire_batch(self, call: Call) -> dict[str, Any]:
        body: shapes.FireBatchRequest = call.body
        if len(body.events) > self.limits.max_batch:
            raise TooLarge(f"the batch has {len(body.events)} events; the limit is {self.limits.max_batch}")
        requests: list[FireRequest | LinkServerError] = []
        for index, item in enumerate(body.events):
            try:
                requests.append(codec.fire_request(item, f"events[{index}]"))
            except LinkServerError as exc:
                requests.append(exc)
        results = self.gateway.fire_many(call.principal, requests, durable=body.durable)
        return {
            "results": [
                {"event": r.marshal()} if isinstance(r, Event) else {"error": codec.error_body(r)}
                for r in results
            ]
        }

    def history(self, call: Call) -> dict[str, Any]:
        query, want_count = codec.history_query(call.query)
        page = self.access.query(query, call.principal)
        answer = codec.page_json(page.events, page.next_cursor)
        if want_count:
            answer["count"] = self.access.count(query, call.principal)
        return answer

    def check_filter(self, call: Call) -> dict[str, Any]:
        body: shapes.FilterCheck = call.body
        return codec.filter_check(body, self.access, call.principal)

    def event(self, call: Call) -> dict[str, Any]:
        event = self.access.get(call.args.id, call.principal)
        shown = event.marshal()
        instructions = self.access.instructions(event)
        if instructions:
            shown["instructions"] = instructions
        alarms = self.gateway.server.alarms.of_event(event, call.principal)  # server/alarms.py
        if alarms:
            shown["alarms"] = alarms
        return {"event": shown}

    def acknowledge(self, call: Call) -> dict[str, Any]:
        body: shapes.Acknowledge = call.body
        return {"event": self.access.acknowledge(call.args.id, call.principal, body.text).marshal()}

    def delete(self, call: Call) -> dict[str, Any]:
        self.access.delete(call.args.id, call.principal)
        return {}

    def purge(self, call: Call) -> dict[str, Any]:
        removed = self.access.purge(call.principal)  # refuses anyone but an engineer on root
        # The alarms cleared longer ago than keep_cleared go too (server/alarms.py).
        return {"removed": removed, "alarms_removed": self.gateway.server.alarms.purge()}

    # -- WebSocket -------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket, send: Send) -> None:
        origin = websocket.headers.get("origin")
        if not origin_allowed(origin, websocket.headers.get("host"), self.allowed_origins):
            log.warning("WebSocket from origin %r refused", origin)
            await websocket.send_denial_response(
                error_response(
                    PermissionDenied(
                        f"WebSocket connections from origin {origin!r} are not allowed; "
                        "the server's administrator can add it to 'allowed_origins' in 'auth'"
                    )
                )
            )
            return
        token = websocket.query_params.get("token") or bearer(websocket) or protocol_token(websocket)
        address = websocket.client.host if websocket.client else None
        try:
            principal = await run_in_threadpool(self.auth.authenticate, token, address)
        except Exception as exc:
            if isinstance(exc, AuthenticationFailed):
                self.stats.token_failures.add()
            await websocket.send_denial_response(error_response(exc))
            return
        await websocket.accept(subprotocol=chosen_protocol(websocket))
        self.stats.websockets += 1
        loop = asyncio.get_running_loop()
        waker = waker_for(loop)  # one loop wake-up for many sessions
        session = Session(self.gateway, principal, self.limits)
        assert token is not None

        def ended(code: int, reason: str) -> None:  # any thread: stop delivering, then close
            session.close()
            loop.call_soon_threadsafe(pusher.set)

        connection = Connection(token, principal, ended)
        # Pushes and answers go to the ASGI send itself: Starlette's state checks in
        # WebSocket.send and its exception wrapper cost a tenth of a push; nothing here needs them.
        # An ended connection gets its close frame instead of whatever was still waiting.
        pusher = Pusher(session, send, run_in_threadpool, connection)
        session.on_output = functools.partial(waker.wake, pusher)  # per session per event: no lambda
        self.connections.add(connection)
        if self.auth.resolve(token) is None:  # ended between the check and the registration
            connection.end(4401, "the token is no longer valid")

        # Messages go through an inbox that a thread of this connection handles in order: the
        # loop reads the next message while the previous one is handled, and many single fires
        # in flight cost no thread hop each (linkserver/net/inbox.py).
        def handle(text: str | bytes) -> None:
            if connection.closing is None:  # ended: what was read ahead is not handled
                session.receive(text)

        inbox: Inbox[str | bytes] = Inbox(handle, f"linkserver-ws-{principal.name}")
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if connection.closing is not None:
                    continue  # ended: nothing more is fired or subscribed
                text = message.get("text")
                inbox.put(text if text is not None else message.get("bytes") or b"")
                while (
                    len(inbox) >= INBOX_SIZE or session.backlog > self.limits.queue_size
                ) and not pusher.closed:
                    await asyncio.sleep(0.001)  # the client sends faster than we answer: stop reading
        except WebSocketDisconnect:
            pass
        finally:
            worker = inbox.close()
            if worker is not None:
                await run_in_threadpool(worker.join)  # what was read is handled
            self.stats.websockets -= 1
            self.connections.discard(connection)
            session.close()
            pusher.close()


def _no_params(request: Request) -> None:
    if request.query_params:
        unknown = ", ".join(sorted(map(repr, request.query_params.keys())))
        raise BadRequest(f"the query parameters: unknown key {unknown}; this operation takes none")


def _route(path: str, methods: dict[str, Callable[[Request], Awaitable[Response]]]) -> Route:
    """One route for every method on ``path``, so that a wrong method gets 405 with ``Allow``
    naming them all."""
    if len(methods) == 1:
        ((method, endpoint),) = methods.items()
        return Route(path, endpoint, methods=[method], name=f"{method} {path}")

    async def dispatch(request: Request) -> Response:
        return await methods[request.method if request.method != "HEAD" else "GET"](request)

    return Route(path, dispatch, methods=list(methods), name=path)


class _WebSocketEndpoint:
    """``handler(websocket, send)`` as an ASGI app (an object, not a function, so that
    Starlette passes scope, receive and send through)."""

    def __init__(self, handler: Callable[[WebSocket, Send], Awaitable[None]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(WebSocket(scope, receive, send), scope.get(RAW_SEND, send))


RAW_SEND = "linkserver.raw_send"


class _KeepRawSend:
    """Outermost middleware: keeps the server's own ``send`` of a WebSocket in the scope, before
    Starlette's exception handling wraps it in a coroutine of its own (a layer per push)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)


def _token_table(server: LinkServer) -> TokenTable:
    """The history's API tokens, after moving an older ``tokens.json`` of the data directory in."""
    table = server.history.api_tokens
    try:
        in_memory = server.config.database_url == MEMORY_URL  # forgets them: read the file each start
        import_token_file(server.config.data_dir, table, keep_file=in_memory)
    except (ValueError, OSError) as exc:
        log.error("API tokens: %s; the tokens in the history database are used", exc)
    return table


def admin_hash(server: LinkServer) -> str | None:
    """The admin's hash from ``<data_dir>/admin.hash`` (see auth.ensure_admin_credentials), if any."""
    path = Path(server.config.data_dir) / ADMIN_HASH_FILE
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return text if check_password_hash(text) is None else None


def create_app(
    server: LinkServer,
    *,
    limits: Limits | None = None,
    authenticator: Authenticator | None = None,
    session_store: SessionStore | None = None,
) -> Starlette:
    """The network API of a started ``server``. Users log in with the password hashes of
    the server's user directory; an ``admin`` without one uses ``<data_dir>/admin.hash``."""
    limits = limits or Limits()
    gateway = Gateway(server, durable_timeout=limits.durable_timeout)
    settings = server.config.auth
    users: UserDirectory = server.users
    if ADMIN in users and users.password_hash(ADMIN) is None:
        generated = admin_hash(server)
        if generated is not None:
            users.adopt_password_hash(ADMIN, generated)
    if authenticator is None:
        authenticator = Authenticator(
            users,
            api_tokens=ApiTokens(_token_table(server)),
            sessions=session_store or SessionStore(settings.session_lifetime, table=server.history.sessions),
            on_login=lambda user, address: gateway.user_event(
                user, "login", {"username": user, "address": address}
            ),
            on_logout=lambda user, address, reason: gateway.user_event(
                user, "logout", {"username": user, "address": address, "reason": reason}
            ),
            throttle=throttle_settings(settings),
            failures=server.history.login_failures,
        )
    auth = authenticator
    connections = Connections()
    auth.on_ended(connections.end_token)
    users.on_change(lambda change: _user_changed(change, auth, connections, server))
    api = Api(gateway, auth, limits, connections=connections, allowed_origins=settings.allowed_origins)

    def check_sessions() -> None:
        auth.follow()  # sessions ended on other nodes
        auth.sweep()
        if auth.api_tokens is not None:
            auth.api_tokens.changed()
        users.refresh()
        connections.recheck(auth.resolve, why=lambda principal: _token_gone(principal, auth))

    watcher = Watcher(check_sessions, lambda: server.running).start()

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            allowed = (exc.headers or {}).get("Allow", "") if isinstance(exc, HTTPException) else ""
            response = error_response(
                BadRequest(f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}")
            )
            response.status_code = 405
            response.headers["Allow"] = allowed
            return response
        return error_response(NotFound(f"no route {request.method} {request.url.path}; see /openapi.json"))

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        404: not_found,
        405: not_found,
    }
    routes = [*api.routes(), Route("/openapi.json", openapi), metrics_route(server, api.stats, bearer)]
    routes += console_routes()  # the web console's page and files (linkserver/web)
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=[Middleware(_KeepRawSend)])
    app.state.gateway, app.state.auth, app.state.api = gateway, auth, api
    app.state.connections, app.state.watcher = connections, watcher
    return app


def throttle_settings(settings: Any) -> ThrottleSettings:
    """The back-off rules of the ``auth`` configuration (loading.config.AuthConfig)."""

    def rule(free: int) -> ThrottleRule:
        return ThrottleRule(
            free=free,
            first_delay=settings.first_delay.total_seconds(),
            max_delay=settings.max_delay.total_seconds(),
            forget_after=settings.forget_after.total_seconds(),
        )

    return ThrottleSettings(
        user=rule(settings.user_failures),
        address=rule(settings.address_failures),
        token=rule(settings.token_failures),
    )


def _token_gone(principal: Principal, auth: Authenticator) -> str:
    """Why a connection's token gives no principal any more: its user was removed (on another
    node, seen here before the sessions it ended), or the token ended."""
    if not principal.is_component and auth.users.get(principal.name) is None:
        return f"user {principal.name} was removed"
    return "the token is no longer valid"


def _user_changed(
    change: UserChange, auth: Authenticator, connections: Connections, server: LinkServer
) -> None:
    """A user changed (here or on another node): end what the change invalidates.

    Sessions are shared: the node that made the change ends them (``change.by`` set); the
    others close their connections when the sessions feed says so (Authenticator.follow).
    """
    name = change.name
    if change.kind in (PASSWORD, REMOVED) and change.by is None:
        return
    if change.kind == PASSWORD:
        auth.end_sessions(name, "revoked", f"the password of {name} was changed", keep=caller_token())
        if name == ADMIN and change.by is not None and forget_admin_credentials(server.config.data_dir):
            log.info("the admin password was set: the generated admin credentials file was deleted")
    elif change.kind == REMOVED:
        auth.end_sessions(name, "revoked", f"user {name} was removed")
    elif change.kind == GRANTS:
        connections.end_user(name, REGRANTED, f"the grants of {name} changed; connect again")
