"""Helpers for testing code that uses LinkServer: a capturing listener, an
in-memory engine built from inline definitions, and a real running server.

    from linkserver.testing import CapturingListener, engine_with

    engine = engine_with({"devices.plc7": [EventDefinition(name="alarm")]})
    seen = CapturingListener()
    engine.listen("devices.*", "alarm", seen)
    engine.fire("devices.plc7", "alarm")
    assert seen.names() == ["alarm"]

:class:`RunningServer` is the whole server with its network API on a free
loopback port, for testing controllers and clients the way they run::

    from linkserver.testing import RunningServer

    with RunningServer(users={"plant": {"devices.**": "admin"}}) as live:
        with live.client("plant") as client:
            client.add_context("devices.plc7")

and ``running_server`` is the same as a pytest fixture (import it into a
``conftest.py``).
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import ssl
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkserver.core.catalog import Catalog, ContextSpec, DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.events import Event
from linkserver.history.memory import MemoryHistoryStore
from linkserver.server.engine import Engine

if TYPE_CHECKING:
    import httpx

    from linkserver.client.sync import Client
    from linkserver.loading.config import ServerConfig
    from linkserver.net.protocol import Limits
    from linkserver.server.app import LinkServer
    from linkserver.typing import DeviceController


class CapturingListener:
    """A listener that keeps every event it gets; thread-safe, with waiting."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._condition = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._condition:
            self.events.append(event)
            self._condition.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Event]:
        """Wait until at least ``count`` events arrived; AssertionError on timeout."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} events within {timeout}s, got {len(self.events)}")
            return list(self.events)

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def clear(self) -> None:
        with self._condition:
            self.events.clear()


def engine_with(
    contexts: Mapping[str, Iterable[EventDefinition]],
    *,
    templates: Mapping[str, Iterable[EventDefinition]] | None = None,
    child_templates: Mapping[str, str] | None = None,
    **kwargs: object,
) -> Engine:
    """An engine on an in-memory history with the given contexts and definitions.

    ``child_templates`` maps a context path to the template its run-time
    children get (e.g. ``{"devices": "device"}``).
    """
    named = {name: DefinitionSet(defs, name=name) for name, defs in (templates or {}).items()}
    children = child_templates or {}
    specs = [
        ContextSpec(
            path=path,
            definitions=DefinitionSet(definitions),
            child_definitions=named[children[path]] if path in children else None,
        )
        for path, definitions in sorted(contexts.items(), key=lambda item: item[0].count("."))
    ]
    kwargs.setdefault("history", MemoryHistoryStore())
    engine = Engine.from_catalog(Catalog(templates=named, contexts=specs), **kwargs)  # type: ignore[arg-type]
    engine.history.start()
    return engine


DEFAULT_USERS: Mapping[str, Mapping[str, str]] = {
    "operator": {"**": "observer", "devices.**": "operator", "alerts.**": "operator"},
    "observer": {"**": "observer"},
}
"""The users a :class:`RunningServer` has besides ``admin`` unless told otherwise."""

_HASHES: dict[str, str] = {}
_names = itertools.count(1)


def password_of(user: str) -> str:
    """The password of every user of a :class:`RunningServer` but ``admin``: ``NAME-pw``."""
    return f"{user}-pw"


def _fast_hash(user: str) -> str:
    # A cheap scrypt cost: hashing at the production cost takes ~0.1 s per user.
    from linkserver.net.auth import hash_password

    if user not in _HASHES:
        _HASHES[user] = hash_password(password_of(user), n=2**10)
    return _HASHES[user]


@functools.cache
def _tls() -> ssl.SSLContext:
    # One TLS context for every httpx client: building one per client costs ~0.1 s.
    return ssl.create_default_context()


class RunningServer:
    """A started LinkServer serving its network API on a free loopback port, in this process.

    The shipped contexts (or ``catalog``, or the configuration file
    ``config_path`` with its contexts), in-memory history unless
    ``database_url`` says otherwise (``"sqlite"``: a file in the data
    directory), an ``admin`` whose generated credentials file is in the
    data directory (``admin_password``, ``credentials_path``) and ``users``
    (name -> grants, password ``NAME-pw``; default :data:`DEFAULT_USERS`).
    ``controllers`` (name -> controller) start with the server; other
    keywords are :class:`~linkserver.loading.ServerConfig` fields
    (``expiration``, ``default_expiration``, ``delivery_queue_size``...).
    ``data_dir`` None: a temporary directory, removed by :meth:`stop`.

    The HTTP side can be stopped and started again on the same port
    (:meth:`restart_http`) while the LinkServer and its history go on, as a
    client sees a server restart. Use it as a context manager, or call
    :meth:`stop`.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        config_path: Path | str | None = None,
        catalog: Catalog | None = None,
        users: Mapping[str, Mapping[str, str]] | None = None,
        database_url: str = "memory://",
        controllers: Mapping[str, DeviceController] | None = None,
        limits: Limits | None = None,
        session_lifetime: timedelta | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        **settings: Any,
    ) -> None:
        from linkserver.core.permissions import Grants
        from linkserver.loading import load_all
        from linkserver.loading.config import ServerConfig, UserConfig
        from linkserver.loading.shipped import SHIPPED_CONFIG
        from linkserver.net.auth import SessionStore, ensure_admin_credentials, read_admin_credentials
        from linkserver.net.protocol import Limits
        from linkserver.net.serve import listen_socket
        from linkserver.runtime import RuntimeRecord, announce, now
        from linkserver.server.app import LinkServer

        self._temporary = data_dir is None and config_path is None
        if config_path is not None:
            config, loaded = load_all(Path(config_path), data_dir=data_dir)
            catalog = catalog or loaded
        else:
            directory = (
                Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="linkserver-"))
            )
            if database_url == "sqlite":
                database_url = f"sqlite:///{(directory / 'history.sqlite3').as_posix()}"
            wanted = dict(DEFAULT_USERS if users is None else users)
            configured = {"admin": UserConfig(name="admin", grants=Grants({"**": "admin"}))}
            for name, grants in wanted.items():
                configured[name] = UserConfig(
                    name=name, password_hash=_fast_hash(name), grants=Grants(grants)
                )
            config = ServerConfig.default(
                data_dir=directory, database_url=database_url, users=configured, **settings
            )
            if catalog is None:
                catalog = load_all(SHIPPED_CONFIG, data_dir=directory)[1]  # the shipped contexts
        self.config: ServerConfig = config
        self.data_dir = Path(config.data_dir)
        self.limits = limits or Limits()
        self._sessions = SessionStore(session_lifetime) if session_lifetime is not None else None
        self.server: LinkServer = LinkServer(config, catalog).start()
        if self._sessions is not None:
            self._sessions.use(self.server.history.sessions)
        try:
            for name, controller in (controllers or {}).items():
                self.server.add_controller(name, controller)
            with listen_socket(host, port, listen=False) as probe:
                self.host, self.port = probe.getsockname()[:2]
            shown = self.host if ":" not in self.host else f"[{self.host}]"
            self.url = f"http://{shown}:{self.port}"
            self.ws_url = f"ws://{shown}:{self.port}/api/v1/ws"
            ensure_admin_credentials(self.data_dir, self.url)
            self.credentials_path = self.data_dir / "admin.credentials"
            self.admin_password = str((read_admin_credentials(self.data_dir) or {}).get("password", ""))
            announce(
                RuntimeRecord(url=self.url, pid=os.getpid(), data_dir=self.data_dir, started=now()),
                register=False,
            )
            self._tokens: dict[str, str] = {}
            self._http: Any = None
            self._thread: threading.Thread | None = None
            self.start_http()
        except BaseException:
            self.server.stop("test server failed to start")
            raise

    # -- the HTTP side -------------------------------------------------------------

    @property
    def app(self) -> Any:
        """The Starlette application now serving."""
        return self._app

    def start_http(self) -> None:
        """Serve the API (again) on the same port."""
        import time

        from linkserver.net.app import create_app
        from linkserver.net.serve import _Uvicorn, listen_socket, uvicorn_config

        sock = listen_socket(self.host, self.port)
        self._app = create_app(self.server, limits=self.limits, session_store=self._sessions)
        self._http = _Uvicorn(uvicorn_config(self._app, self.limits))
        self._thread = threading.Thread(
            target=self._http.run, kwargs={"sockets": [sock]}, name="linkserver-test-http", daemon=True
        )
        self._sock = sock
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._http.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test server did not start serving on {self.url}")
            time.sleep(0.005)

    def stop_http(self) -> None:
        """Stop serving and end every open session (clients must log in again); the LinkServer
        goes on. (A real server's stop ends no session: they are kept in history.)"""
        if self._http is not None and self._thread is not None:
            self._http.should_exit = True
            self._thread.join(timeout=10)
            self._app.state.auth.close_all()
            self._sock.close()
            self._http = self._thread = None

    def restart_http(self, down: float = 0.0) -> None:
        """Stop serving, wait ``down`` seconds, serve again on the same port: a restart as clients see it."""
        import time

        self.stop_http()
        time.sleep(down)
        self.start_http()

    @property
    def serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, reason: str = "test over") -> None:
        """Stop serving and stop the LinkServer (history flushed); idempotent."""
        from linkserver.runtime import withdraw

        self.stop_http()
        self.server.stop(reason)
        withdraw(self.data_dir)
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- callers -------------------------------------------------------------------

    def password(self, user: str) -> str:
        """The password of ``user``: the generated one for ``admin``, ``NAME-pw`` for the others."""
        return self.admin_password if user == "admin" else password_of(user)

    def login(self, user: str) -> str:
        """A new session token of ``user`` (POST /login)."""
        with self.http() as http:
            answer = http.post("/login", json={"user": user, "password": self.password(user)})
        if answer.status_code != 200:
            raise AssertionError(f"login of {user!r} failed: {answer.status_code} {answer.text}")
        return str(answer.json()["token"])

    def token(self, user: str) -> str:
        """A session token of ``user``, logged in once per server."""
        if user not in self._tokens:
            self._tokens[user] = self.login(user)
        return self._tokens[user]

    def client(self, user: str = "admin", **kwargs: Any) -> Client:
        """A :class:`linkserver.client.Client` logged in as ``user`` (close it, or use ``with``)."""
        from linkserver.client.sync import Client

        kwargs.setdefault("token", None)
        if kwargs["token"] is None:
            kwargs.update(user=user, password=self.password(user))
        return Client(self.url, **kwargs)

    def http(self, user: str | None = None, token: str | None = None) -> httpx.Client:
        """An httpx client on ``/api/v1``, with ``user``'s session token (or ``token``) if given."""
        import httpx

        headers = {}
        if user is not None or token is not None:
            headers["Authorization"] = f"Bearer {token or self.token(user)}"  # type: ignore[arg-type]
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=10, verify=_tls())

    def ws(self, user: str, **kwargs: Any) -> Any:
        """A raw WebSocket (``websockets.sync``) on the API, logged in as ``user``."""
        from websockets.sync.client import connect

        return connect(f"{self.ws_url}?token={self.token(user)}", open_timeout=5, **kwargs)

    def new_device(self, prefix: str = "dev", description: str = "") -> str:
        """A fresh device context ``devices.<prefix><n>``; returns its path."""
        path = f"devices.{prefix}{next(_names)}"
        self.server.engine.add_context(path, description=description or f"test device {path}")
        return path

    def new_alert(self, prefix: str = "alarm") -> str:
        """A fresh alert context ``alerts.<prefix><n>``; returns its path."""
        path = f"alerts.{prefix}{next(_names)}"
        self.server.engine.add_context(path, description=f"test alert {path}")
        return path


def __getattr__(name: str) -> Any:
    # The pytest fixture is made on first use, so that importing this module never imports pytest.
    if name == "running_server":
        import pytest

        @pytest.fixture
        def running_server(tmp_path: Path) -> Iterator[RunningServer]:
            """A :class:`RunningServer` with the defaults, data in ``tmp_path``, stopped after the test."""
            with RunningServer(tmp_path / "linkserver") as server:
                yield server

        globals()[name] = running_server
        return running_server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
