"""The command line's session tokens, kept between commands so that a command is not a login.

``linkserver history``, ``fire``, ``user``... log in only when they hold no
session token for that server and user; the token goes to
``$XDG_STATE_HOME/linkserver/sessions.json`` (``~/.local/state/...``; the
directory 0700, the file 0600, written atomically) and the next command
reuses it. A cached token the server no longer accepts (expired, ended by a
restart, a password change or a logout elsewhere) is replaced by a new
login, transparently. ``linkserver login`` and ``logout`` begin and end
such a session on purpose, the events ``login``/``logout`` meaning what they
say. ``$LINKSERVER_SESSIONS`` names another file (``off``: keep none).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from linkserver.client.errors import AuthenticationFailed
from linkserver.client.sync import Client

log = logging.getLogger("linkserver.client")

SESSIONS_ENV = "LINKSERVER_SESSIONS"


def sessions_path() -> Path | None:
    """Where session tokens are kept; None when ``$LINKSERVER_SESSIONS`` is ``off``."""
    explicit = os.environ.get(SESSIONS_ENV)
    if explicit:
        return None if explicit.lower() == "off" else Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "linkserver" / "sessions.json"


class SessionCache:
    """``(server url, user) -> token`` in one private JSON file. Never raises for I/O:
    a cache that cannot be read or written is just empty (and a warning is logged)."""

    def __init__(self, path: Path | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path if path is not None else sessions_path()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str, user: str) -> str:
        return f"{user}@{url}"

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the session cache %s: %s", self.path, exc)
            return {}
        sessions = document.get("sessions") if isinstance(document, dict) else None
        return sessions if isinstance(sessions, dict) else {}

    def _write(self, sessions: dict[str, Any]) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"sessions": sessions}, handle, indent=2)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot keep the session token in %s: %s", self.path, exc)

    def get(self, url: str, user: str) -> str | None:
        """The cached token, unless absent or past the expiry the server gave."""
        entry = self._read().get(self.key(url, user))
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            return None
        expires = entry.get("expires")
        try:
            if isinstance(expires, str) and datetime.fromisoformat(expires) <= self._clock():
                return None
        except ValueError:
            return None
        return str(entry["token"])

    def put(self, url: str, user: str, token: str, expires: str | None = None) -> None:
        with self._lock:
            sessions = self._read()
            now = self._clock()
            for key, entry in list(sessions.items()):  # drop what has expired anyway
                try:
                    if datetime.fromisoformat(entry["expires"]) <= now:
                        del sessions[key]
                except (TypeError, KeyError, ValueError):
                    pass
            sessions[self.key(url, user)] = {"token": token, "expires": expires}
            self._write(sessions)

    def forget(self, url: str, user: str) -> str | None:
        """Drop the entry; returns the token it held."""
        with self._lock:
            sessions = self._read()
            entry = sessions.pop(self.key(url, user), None)
            if entry is not None:
                self._write(sessions)
        return entry.get("token") if isinstance(entry, dict) else None


class CachedSessionClient(Client):
    """A :class:`Client` for ``user`` that starts from the cached token and caches every
    new one. ``password()`` is asked only when a login is needed."""

    def __init__(
        self,
        url: str | None,
        *,
        user: str,
        password: Callable[[], str],
        cache: SessionCache | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, user=user, password="", **options)
        self.cache = cache or SessionCache()
        self._password = password
        self._asked = False
        self._token = self.cache.get(self.url, user)
        self.cached = self._token is not None

    def login(self) -> str:
        if not self._asked:
            self.credentials = attrs.evolve(self.credentials, password=self._password())
            self._asked = True
        user = str(self.credentials.user)
        try:
            token = super().login()
        except AuthenticationFailed:
            self.cache.forget(self.url, user)
            raise
        self.cache.put(self.url, user, token)  # kept until the server refuses it
        return token

    def logout(self) -> None:
        """End the session (``logout`` on the server) and forget it here."""
        user = str(self.credentials.user)
        self.cache.forget(self.url, user)
        super().logout()
