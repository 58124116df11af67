"""The network API: a Starlette app over a running LinkServer (docs/protocol.md).

Every action goes through :class:`~linkserver.net.gateway.Gateway`, which
applies the caller's grants. Blocking work (firing, history, scrypt)
runs in worker threads; the WebSocket transport is a thin loop around
:class:`~linkserver.net.protocol.Session`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from linkserver.core.errors import (
    LinkServerError,
)
from linkserver.core.events import Event
from linkserver.core.levels import Permission
from linkserver.core.permissions import Principal
from linkserver.net import codec
from linkserver.net.auth import ADMIN, ADMIN_HASH_FILE, Authenticator, SessionStore, check_password_hash
from linkserver.net.codec import AuthenticationFailed, BadRequest, FireRequest, NotFound, TooLarge
from linkserver.net.gateway import Gateway
from linkserver.net.metrics import NetStats, metrics_route
from linkserver.net.openapi import openapi_document
from linkserver.net.protocol import Limits, Session
from linkserver.net.push import waker_for
from linkserver.server.app import LinkServer

log = logging.getLogger("linkserver.net")

PREFIX = "/api/v1"
OBSERVER = Permission.OBSERVER
SEND_CHUNK = 1000  # outbox items a WebSocket sender takes at once (batched subscriptions: few messages)


# -- HTTP -------------------------------------------------------------------------------------


@attrs.define
class Call:
    """One HTTP request as the route functions see it (they run in worker threads)."""

    request: Request
    principal: Principal
    body: Any
    token: str | None

    @property
    def address(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def params(self) -> Any:
        return self.request.query_params

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


def bearer(connection: HTTPConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def error_response(exc: BaseException) -> JSONResponse:
    status = codec.error_status(exc)
    if status >= 500 and not isinstance(exc, LinkServerError):
        log.error("request failed", exc_info=exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": codec.error_body(exc)}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request body has {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return codec.parse_json(b"".join(chunks), limit)


class Api:
    """The HTTP routes and the WebSocket endpoint over one Gateway and Authenticator."""

    def __init__(self, gateway: Gateway, auth: Authenticator, limits: Limits) -> None:
        self.gateway, self.auth, self.limits = gateway, auth, limits
        self.access = gateway.server.access
        self.stats = NetStats(auth)

    def route(
        self,
        method: str,
        path: str,
        work: Callable[[Call], Any],
        *,
        status: int = 200,
        body: bool = False,
        authenticated: bool = True,
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                token = bearer(request)
                principal = await run_in_threadpool(self.auth.authenticate, token) if authenticated else None
                document = await _read_body(request, self.limits.max_message_bytes) if body else None
                call = Call(request, principal, document, token)  # type: ignore[arg-type]
                content = await run_in_threadpool(lambda: codec.dumps(work(call)))
            except Exception as exc:
                if isinstance(exc, AuthenticationFailed):
                    (self.stats.token_failures if authenticated else self.stats.login_failures).add()
                return error_response(exc)
            return Response(content, status_code=status, media_type="application/json")

        return Route(PREFIX + path, endpoint, methods=[method], name=f"{method} {path}")

    def routes(self) -> list[Route | WebSocketRoute]:
        r = self.route
        return [
            r("POST", "/login", self.login, body=True, authenticated=False),
            r("POST", "/logout", self.logout),
            r("GET", "/me", self.me),
            r("GET", "/tree", self.tree),
            r("GET", "/contexts/{path}", lambda c: self.gateway.context_json(c.principal, c.path("path"))),
            r("POST", "/contexts", self.add_context, status=201, body=True),
            r("DELETE", "/contexts/{path}", self.remove_context),
            r("POST", "/fire", self.fire, body=True),
            r("POST", "/fire/batch", self.fire_batch, body=True),
            r("GET", "/history", self.history),
            r(
                "GET",
                "/events/{id}",
                lambda c: {"event": self.access.get(self._id(c), c.principal).marshal()},
            ),
            r("POST", "/events/{id}/acknowledge", self.acknowledge, body=True),
            r("DELETE", "/events/{id}", self.delete),
            r("POST", "/purge", lambda c: {"removed": self.access.purge(c.principal)}),
            WebSocketRoute(PREFIX + "/ws", _WebSocketEndpoint(self.websocket), name="websocket"),
        ]

    # -- routes (in worker threads) ------------------------------------------------

    def login(self, call: Call) -> dict[str, Any]:
        body = codec.require_object(call.body)
        codec.check_keys(body, ("user", "password"), "the login request")
        session = self.auth.login(body.get("user"), body.get("password"), call.address)
        return {"token": session.token, "user": session.user, "expires": session.expires.isoformat()}

    def logout(self, call: Call) -> dict[str, Any]:
        if call.token:
            self.auth.logout(call.token, call.address)
        return {}

    def me(self, call: Call) -> dict[str, Any]:
        grants = {mask or "root": str(level) for mask, level in call.principal.grants.items()}
        return {"user": call.principal.name, "grants": grants, "component": call.principal.is_component}

    def tree(self, call: Call) -> dict[str, Any]:
        codec.check_keys(dict(call.params), ("path", "depth"), "the query parameters")
        depth_text = call.params.get("depth")
        if depth_text is not None and not depth_text.isdigit():
            raise BadRequest(f"'depth' must be a non-negative integer, got {depth_text!r}")
        depth = int(depth_text) if depth_text is not None else None
        return self.gateway.tree_json(call.principal, call.params.get("path") or "root", depth)

    def add_context(self, call: Call) -> dict[str, Any]:
        body = codec.require_object(call.body)
        codec.check_keys(body, ("path", "template", "description"), "the request")
        context = self.gateway.add_context(
            call.principal,
            codec.get(body, "path", str, required=True),
            codec.get(body, "template", str),
            codec.get(body, "description", str, default=""),
        )
        return {"path": context.path}

    def remove_context(self, call: Call) -> dict[str, Any]:
        return {"removed": list(self.gateway.remove_context(call.principal, call.path("path")))}

    def fire(self, call: Call) -> dict[str, Any]:
        request = codec.fire_request(call.body)
        durable = codec.get(call.body, "durable", bool, default=False)
        return {"event": self.gateway.fire(call.principal, request, durable=durable).marshal()}

    def fire_batch(self, call: Call) -> dict[str, Any]:
        body = codec.require_object(call.body)
        codec.check_keys(body, ("events", "durable"), "the batch")
        items = codec.get(body, "events", list, required=True)
        if len(items) > self.limits.max_batch:
            raise TooLarge(f"the batch has {len(items)} events; the limit is {self.limits.max_batch}")
        requests: list[FireRequest | LinkServerError] = []
        for index, item in enumerate(items):
            try:
                requests.append(codec.fire_request(item, f"events[{index}]"))
            except LinkServerError as exc:
                requests.append(exc)
        results = self.gateway.fire_many(
            call.principal, requests, durable=codec.get(body, "durable", bool, default=False)
        )
        return {
            "results": [
                {"event": r.marshal()} if isinstance(r, Event) else {"error": codec.error_body(r)}
                for r in results
            ]
        }

    def history(self, call: Call) -> dict[str, Any]:
        query, want_count = codec.history_query(call.params)
        page = self.access.query(query, call.principal)
        answer = codec.page_json(page.events, page.next_cursor)
        if want_count:
            answer["count"] = self.access.count(query, call.principal)
        return answer

    def acknowledge(self, call: Call) -> dict[str, Any]:
        body = codec.require_object(call.body)
        codec.check_keys(body, ("text",), "the acknowledgement")
        text = codec.get(body, "text", str, required=True)
        return {"event": self.access.acknowledge(self._id(call), call.principal, text).marshal()}

    def delete(self, call: Call) -> dict[str, Any]:
        self.access.delete(self._id(call), call.principal)
        return {}

    @staticmethod
    def _id(call: Call) -> int:
        return codec.parse_event_id(call.path("id"))

    # -- WebSocket -------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket, send: Send) -> None:
        token = websocket.query_params.get("token") or bearer(websocket)
        try:
            principal = await run_in_threadpool(self.auth.authenticate, token)
        except Exception as exc:
            if isinstance(exc, AuthenticationFailed):
                self.stats.token_failures.add()
            await websocket.send_denial_response(error_response(exc))
            return
        await websocket.accept()
        self.stats.websockets += 1
        wake = asyncio.Event()
        waker = waker_for(asyncio.get_running_loop())  # one loop wake-up for many sessions
        session = Session(self.gateway, principal, self.limits, on_output=lambda: waker.wake(wake))
        sender = asyncio.create_task(self._send_loop(send, session, wake))
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                await run_in_threadpool(
                    session.receive, text if text is not None else message.get("bytes") or b""
                )
                while session.backlog > self.limits.queue_size and not sender.done():
                    await asyncio.sleep(0.01)  # the client does not read its answers: stop reading
        except WebSocketDisconnect:
            pass
        finally:
            self.stats.websockets -= 1
            session.close()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    @staticmethod
    async def _send_loop(send: Send, session: Session, wake: asyncio.Event) -> None:
        """Pushes and answers go to the ASGI ``send`` itself: Starlette's state checks in
        ``WebSocket.send`` cost a tenth of a push, and nothing here needs them."""
        try:
            while True:
                wake.clear()  # before taking: whatever comes after the take signals again
                for text in session.take_text(SEND_CHUNK):
                    await send({"type": "websocket.send", "text": text})
                if session.pending:
                    continue  # more than one chunk was waiting: no new signal will come
                if session.wants_pump:
                    await run_in_threadpool(session.pump)
                else:
                    await wake.wait()
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the connection is gone; the receive loop ends the session
        except Exception:
            log.exception("WebSocket sender of %s failed", session.principal.name)


class _WebSocketEndpoint:
    """``handler(websocket, send)`` as an ASGI app (an object, not a function, so that
    Starlette passes scope, receive and send through)."""

    def __init__(self, handler: Callable[[WebSocket, Send], Awaitable[None]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(WebSocket(scope, receive, send), send)


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
    """The network API of a started ``server``. Users log in with their configured
    ``password_hash``; an ``admin`` without one uses ``<data_dir>/admin.hash``."""
    gateway = Gateway(server)
    if authenticator is None:
        hashes = {name: user.password_hash for name, user in server.config.users.items()}
        if ADMIN in hashes and hashes[ADMIN] is None:
            hashes[ADMIN] = admin_hash(server)
        authenticator = Authenticator(
            server.users,
            hashes,
            data_dir=server.config.data_dir,
            sessions=session_store,
            on_login=lambda user, address: gateway.user_event(
                user, "login", {"username": user, "address": address}
            ),
            on_logout=lambda user, address, reason: gateway.user_event(
                user, "logout", {"username": user, "address": address, "reason": reason}
            ),
        )
    api = Api(gateway, authenticator, limits or Limits())

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status == 405:
            return JSONResponse(
                {
                    "error": {
                        "type": "BadRequest",
                        "message": f"{request.method} is not allowed on {request.url.path}",
                    }
                },
                405,
            )
        return error_response(NotFound(f"no route {request.method} {request.url.path}; see /openapi.json"))

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        404: not_found,
        405: not_found,
    }
    routes = [*api.routes(), Route("/openapi.json", openapi), metrics_route(server, api.stats, bearer)]
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.gateway, app.state.auth, app.state.api = gateway, authenticator, api
    return app
