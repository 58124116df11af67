"""Who is calling: logins, session tokens and bearer tokens, with back-off for guessers.

- Passwords are scrypt hashes (:mod:`linkserver.server.passwords`); users,
  their hashes and grants come from the server's
  :class:`~linkserver.server.users.UserDirectory` (the history database).
- A login opens a *session token* (random, in memory, with an expiry): a
  restart logs everybody out.
- *API tokens* (``NAME.SECRET``) and the admin credentials file are in
  :mod:`linkserver.net.tokens`.
- Failed logins are counted per user name and per address, unknown bearer
  tokens per address (:mod:`linkserver.net.throttle`): past a few, the
  caller must wait (:class:`~linkserver.core.errors.TooManyAttempts`, 429).
- Whenever a session ends (logout, expiry, password change, removal of the
  user) the ``on_ended(token, reason)`` listeners hear of it, so open
  WebSocket connections of that token end too.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs

from linkserver.core.errors import AuthenticationFailed, TooManyAttempts
from linkserver.core.permissions import Principal
from linkserver.net.throttle import Throttle, ThrottleRule
from linkserver.net.tokens import (  # noqa: F401 - re-exported: the public home of these names
    ADMIN,
    ADMIN_HASH_FILE,
    CREDENTIALS_FILE,
    TOKENS_FILE,
    ApiTokens,
    create_token,
    ensure_admin_credentials,
    forget_admin_credentials,
    list_tokens,
    read_admin_credentials,
    revoke_token,
)
from linkserver.server.passwords import (  # noqa: F401 - re-exported
    KEY_LENGTH,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    check_password_hash,
    hash_password,
    verify_password,
)

log = logging.getLogger("linkserver.net.auth")

DEFAULT_SESSION_LIFETIME = timedelta(hours=12)
_WRONG = "wrong user name or password"
_NAME_KEY = 100  # user names longer than this share a throttle key (names are never that long)


class Users(Protocol):
    """What logging in needs to know of the users (a UserDirectory)."""

    def get(self, name: str) -> Principal | None: ...

    def password_hash(self, name: str) -> str | None: ...


@attrs.frozen(kw_only=True)
class ThrottleSettings:
    """The back-off rules: failed logins per user and per address, unknown tokens per address."""

    user: ThrottleRule = ThrottleRule(free=5)
    address: ThrottleRule = ThrottleRule(free=20)
    token: ThrottleRule = ThrottleRule(free=20)


# -- session tokens ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SessionToken:
    token: str = attrs.field(repr=False)
    user: str
    expires: datetime
    address: str | None = None


class SessionStore:
    """Session tokens in memory; thread-safe. Expired tokens are forgotten when seen."""

    def __init__(
        self, lifetime: timedelta = DEFAULT_SESSION_LIFETIME, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.lifetime = lifetime
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sessions: dict[str, SessionToken] = {}
        self._lock = threading.Lock()

    def open(self, user: str, address: str | None = None) -> SessionToken:
        session = SessionToken(
            token=secrets.token_urlsafe(32), user=user, expires=self._clock() + self.lifetime, address=address
        )
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str) -> tuple[SessionToken | None, SessionToken | None]:
        """``(valid session, None)``, ``(None, the session that just expired)`` or ``(None, None)``."""
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None, None
            if session.expires <= self._clock():
                del self._sessions[token]
                return None, session
            return session, None

    def peek(self, token: str) -> tuple[SessionToken | None, SessionToken | None]:
        """Like :meth:`get`, but an expired session is left for :meth:`sweep`."""
        with self._lock:
            session = self._sessions.get(token)
        if session is None:
            return None, None
        if session.expires <= self._clock():
            return None, session
        return session, None

    def close(self, token: str) -> SessionToken | None:
        with self._lock:
            return self._sessions.pop(token, None)

    def sweep(self) -> list[SessionToken]:
        """Forget and return every expired session."""
        now = self._clock()
        with self._lock:
            expired = [s for s in self._sessions.values() if s.expires <= now]
            for session in expired:
                del self._sessions[session.token]
        return expired

    def close_user(self, user: str, keep: str | None = None) -> list[SessionToken]:
        """End every session of ``user`` except the one of token ``keep``."""
        with self._lock:
            ended = [s for s in self._sessions.values() if s.user == user and s.token != keep]
            for session in ended:
                del self._sessions[session.token]
        return ended

    def close_all(self) -> list[SessionToken]:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        return sessions

    def count(self) -> int:
        """Sessions open (expired ones not yet seen included). Not ``__len__``: an empty
        store must stay truthy (``sessions or SessionStore()``)."""
        return len(self._sessions)


# -- the authenticator ---------------------------------------------------------------------

LoginHook = Callable[[str, str | None], None]
LogoutHook = Callable[[str, str | None, str], None]
EndedListener = Callable[[str, str], None]


class Authenticator:
    """Logs users in and out and turns tokens into principals.

    ``users`` gives each user's principal and password hash (a user without
    one cannot log in with a password). ``on_login(user, address)`` and
    ``on_logout(user, address, reason)`` run after the fact and may not fail
    the call.
    """

    def __init__(
        self,
        users: Users,
        *,
        api_tokens: ApiTokens | None = None,
        sessions: SessionStore | None = None,
        on_login: LoginHook | None = None,
        on_logout: LogoutHook | None = None,
        throttle: ThrottleSettings | None = None,
    ) -> None:
        self.users = users
        self.sessions = sessions or SessionStore()
        self.api_tokens = api_tokens
        self.on_login = on_login
        self.on_logout = on_logout
        settings = throttle or ThrottleSettings()
        self.user_throttle = Throttle(settings.user)
        self.address_throttle = Throttle(settings.address)
        self.token_throttle = Throttle(settings.token)
        self._ended: list[EndedListener] = []
        self._dummy: str | None = None
        self._lock = threading.Lock()

    def on_ended(self, listener: EndedListener) -> None:
        """Call ``listener(token, reason)`` for every session that ends."""
        self._ended.append(listener)

    # -- passwords ------------------------------------------------------------------

    def check_password(self, user: object, password: object, address: str | None = None) -> str:
        """Return ``user`` if ``password`` is its password; throttled like a login.

        AuthenticationFailed (the same message for a wrong user and a wrong
        password, after the same time) or TooManyAttempts.
        """
        if not isinstance(user, str) or not isinstance(password, str):
            raise AuthenticationFailed("give 'user' and 'password' as strings")
        name_key = user[:_NAME_KEY]
        wait = max(self.user_throttle.retry_after(name_key), self.address_throttle.retry_after(address))
        if wait > 0:
            log.warning("login for user %r from %s refused: too many failures", user, address or "unknown")
            raise TooManyAttempts("failed logins for this user or from this address", wait)
        encoded = self.users.password_hash(user) if self.users.get(user) is not None else None
        if encoded is None:
            verify_password(password, self._dummy_hash())  # the same time as a wrong password
            ok = False
        else:
            ok = verify_password(password, encoded)
        if not ok:
            self.user_throttle.failed(name_key)
            self.address_throttle.failed(address)
            log.warning("failed login for user %r from %s", user, address or "unknown address")
            raise AuthenticationFailed(_WRONG)
        self.user_throttle.succeeded(name_key)
        return user

    # -- sessions -----------------------------------------------------------------------

    def login(self, user: object, password: object, address: str | None = None) -> SessionToken:
        """Open a session; AuthenticationFailed with the same message for wrong user or password."""
        name = self.check_password(user, password, address)
        self.sweep()
        session = self.sessions.open(name, address)
        self._hook(self.on_login, name, address)
        return session

    def logout(self, token: str, address: str | None = None) -> None:
        session = self.sessions.close(token)
        if session is not None:
            self._hook(self.on_logout, session.user, address, "logout")
            self._tell(session.token, "logged out")

    def end_sessions(self, user: str, reason: str, why: str, keep: str | None = None) -> int:
        """End every session of ``user`` but ``keep``: ``logout`` with ``reason``, ``why`` for
        its connections. Returns how many ended."""
        ended = self.sessions.close_user(user, keep)
        for session in ended:
            self._hook(self.on_logout, session.user, session.address, reason)
            self._tell(session.token, why)
        return len(ended)

    def sweep(self) -> int:
        """End every expired session (``logout`` with reason ``timeout``); returns how many."""
        expired = self.sessions.sweep()
        for session in expired:
            self._hook(self.on_logout, session.user, session.address, "timeout")
            self._tell(session.token, "the session expired")
        return len(expired)

    def close_all(self, reason: str = "closed") -> None:
        """End every session (at shutdown); each fires ``logout`` with ``reason``."""
        for session in self.sessions.close_all():
            self._hook(self.on_logout, session.user, session.address, reason)

    # -- tokens --------------------------------------------------------------------------

    def resolve(self, token: str | None) -> Principal | None:
        """The principal a token stands for now, or None; no side effects (for re-checks)."""
        if not token:
            return None
        session, _ = self.sessions.peek(token)
        if session is not None:
            return self.users.get(session.user)
        return self.api_tokens.resolve(token) if self.api_tokens is not None else None

    def authenticate(self, token: str | None, address: str | None = None) -> Principal:
        """The principal of a session or API token; AuthenticationFailed otherwise.

        Unknown tokens count against ``address``; while it is locked, unknown
        tokens get TooManyAttempts. Valid tokens always pass: they are
        256-bit secrets, and other clients behind the same address keep working.
        """
        if not token:
            raise AuthenticationFailed(
                "authentication required: send 'Authorization: Bearer TOKEN' (POST /api/v1/login gives one)"
            )
        session, expired = self.sessions.get(token)
        if session is not None:
            principal = self.users.get(session.user)
            if principal is not None:
                return principal
        if expired is not None:
            self._hook(self.on_logout, expired.user, expired.address, "timeout")
            self._tell(expired.token, "the session expired")
            raise AuthenticationFailed("the session token has expired; log in again")
        principal = self.api_tokens.resolve(token) if self.api_tokens is not None else None
        if principal is not None:
            return principal
        wait = self.token_throttle.retry_after(address)
        if wait > 0:
            raise TooManyAttempts("unknown tokens from this address", wait)
        if self.token_throttle.failed(address) > 0:
            log.warning("unknown bearer tokens from %s: it must wait before trying more", address)
        raise AuthenticationFailed("unknown or expired token; log in again")

    # -- internals ---------------------------------------------------------------------

    def _dummy_hash(self) -> str:
        with self._lock:
            if self._dummy is None:
                self._dummy = hash_password(secrets.token_urlsafe(8))
            return self._dummy

    def _tell(self, token: str, why: str) -> None:
        for listener in list(self._ended):
            try:
                listener(token, why)
            except Exception:
                log.exception("session listener %r failed", listener)

    @staticmethod
    def _hook(hook: Callable[..., None] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:
            log.exception("session hook %r failed", hook)


def _main(argv: list[str] | None = None) -> int:
    """``python -m linkserver.net.auth`` — see :mod:`linkserver.net.serve` for the wiring."""
    from linkserver.net.serve import token_command

    return token_command(argv)


if __name__ == "__main__":
    raise SystemExit(_main())
