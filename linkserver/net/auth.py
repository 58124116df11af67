"""Who is calling: logins, session tokens and bearer tokens, with back-off for guessers.

- Passwords are scrypt hashes (:mod:`linkserver.server.passwords`); users,
  their hashes and grants come from the server's
  :class:`~linkserver.server.users.UserDirectory` (the history database).
- A login opens a *session token* (random, with an expiry), kept hashed in
  the history database: it works on every node sharing that database and
  outlives a restart.
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

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import attrs

from linkserver.core.errors import AuthenticationFailed, TooManyAttempts
from linkserver.core.permissions import Principal
from linkserver.history.failures import FailureTable, MemoryFailureTable
from linkserver.history.sessions import MemorySessionTable, SessionTable, StoredSession
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
    import_token_file,
    list_tokens,
    read_admin_credentials,
    revoke_token,
    secret_text,
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


def session_digest(token: str) -> str:
    """What the sessions table keeps of a token: a SHA-256 (tokens are 256-bit random secrets,
    so a slow hash buys nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _may_be_session(token: str) -> bool:
    # Session tokens are token_urlsafe: never a dot. API tokens (NAME.SECRET) always have one,
    # so checking them costs no database read.
    return "." not in token and 0 < len(token) <= 100


class SessionStore:
    """Session tokens kept in a :class:`~linkserver.history.sessions.SessionTable` (the history
    database: every node of a cluster shares them), with a cache in front. Thread-safe.

    A token seen once is answered from the cache until it expires or the table's change feed
    (:meth:`follow`, read every half second) says it ended; a token not in the cache costs
    one read. Ending a session (logout, expiry, revocation) is written to the table first,
    so every node learns of it from the feed. Without a table, one in memory.
    """

    def __init__(
        self,
        lifetime: timedelta = DEFAULT_SESSION_LIFETIME,
        clock: Callable[[], datetime] | None = None,
        table: SessionTable | None = None,
    ) -> None:
        self.lifetime = lifetime
        self._clock = clock or (lambda: datetime.now(UTC))
        self.table: SessionTable = table if table is not None else MemorySessionTable()
        self._cache: dict[str, SessionToken] = {}  # token -> open session as last known
        self._by_digest: dict[str, str] = {}  # digest -> token, for the feed
        self._seq: int | None = None  # the last change of the feed seen
        self._lock = threading.Lock()
        # Held by the feed's reader and by whoever reads a row to cache it: the feed is never
        # read between the read of a row and its caching (see _lookup).
        self._feed = threading.Lock()

    def use(self, table: SessionTable) -> None:
        """Keep sessions in ``table`` from now on (the cache starts empty)."""
        with self._feed, self._lock:
            self.table, self._cache, self._by_digest, self._seq = table, {}, {}, None

    def _start_feed(self) -> None:
        """Take the feed's position before the first session is cached (call with ``_feed``):
        a session ended after it was cached has a higher change number, so :meth:`follow`
        sees it end. (The table's numbers are visible in order: see SessionTable.)"""
        if self._seq is None:
            self._seq = self.table.last_seq()

    def _remember(self, session: SessionToken) -> None:
        with self._lock:
            self._cache[session.token] = session
            self._by_digest[session_digest(session.token)] = session.token

    def _forget(self, token: str) -> SessionToken | None:
        with self._lock:
            session = self._cache.pop(token, None)
            self._by_digest.pop(session_digest(token), None)
            return session

    def open(self, user: str, address: str | None = None) -> SessionToken:
        now = self._clock()
        session = SessionToken(token=secret_text(32), user=user, expires=now + self.lifetime, address=address)
        with self._feed:
            self._start_feed()
            self.table.insert(
                StoredSession(
                    digest=session_digest(session.token),
                    user=user,
                    address=address,
                    created=now,
                    expires=session.expires,
                )
            )
            self._remember(session)
        return session

    def _lookup(self, token: str) -> SessionToken | None:
        """The open session of ``token`` as last known: the cache, else the table."""
        session = self._cache.get(token)
        if session is not None or not _may_be_session(token):
            return session
        # Under the feed's lock: were the feed read between this read and the caching, an end
        # written in between would be passed over (its digest not yet known here) and the
        # session cached as open for the rest of its life.
        with self._feed:
            self._start_feed()
            stored = self.table.get(session_digest(token))
            if stored is None or stored.ended is not None:
                return None
            session = SessionToken(
                token=token, user=stored.user, expires=stored.expires, address=stored.address
            )
            self._remember(session)
        return session

    def get(self, token: str) -> tuple[SessionToken | None, SessionToken | None]:
        """``(valid session, None)``, ``(None, the session that just expired)`` or ``(None, None)``.

        An expired session is ended here (reason ``timeout``); it is returned as just
        expired only to the caller that ended it, so its ``logout`` is reported once.
        """
        session = self._lookup(token)
        if session is None:
            return None, None
        now = self._clock()
        if session.expires <= now:
            self._forget(token)
            ended = self.table.end([session_digest(token)], now, "timeout", "the session expired")
            return None, (session if ended else None)
        return session, None

    def peek(self, token: str) -> tuple[SessionToken | None, SessionToken | None]:
        """Like :meth:`get`, but an expired session is left for :meth:`sweep`."""
        session = self._lookup(token)
        if session is None:
            return None, None
        if session.expires <= self._clock():
            return None, session
        return session, None

    def _ended(self, rows: list[StoredSession]) -> list[SessionToken]:
        ended = []
        for row in rows:
            with self._lock:
                token = self._by_digest.get(row.digest, "")
            if token:
                self._forget(token)
            ended.append(SessionToken(token=token, user=row.user, expires=row.expires, address=row.address))
        return ended

    def close(self, token: str, reason: str = "logout", why: str = "logged out") -> SessionToken | None:
        """End the session of ``token``; returns it if this call ended it."""
        self._forget(token)
        if not _may_be_session(token):
            return None
        ended = self._ended(self.table.end([session_digest(token)], self._clock(), reason, why))
        if not ended:
            return None
        return attrs.evolve(ended[0], token=token)

    def sweep(self) -> list[SessionToken]:
        """End and return every expired session no one ended yet (on any node). The ``token``
        of one this node never saw is empty."""
        return self._ended(self.table.end_expired(self._clock(), "timeout", "the session expired"))

    def close_user(
        self, user: str, keep: str | None = None, reason: str = "revoked", why: str = "revoked"
    ) -> list[SessionToken]:
        """End every session of ``user`` except the one of token ``keep``."""
        rows = self.table.end_user(
            user, self._clock(), reason, why, keep=session_digest(keep) if keep else None
        )
        return self._ended(rows)

    def close_all(self, reason: str = "closed", why: str = "the server stopped") -> list[SessionToken]:
        return self._ended(self.table.end_all(self._clock(), reason, why))

    def follow(self) -> list[tuple[str, str]]:
        """``(token, why)`` of every session this node knows that ended since the last call
        (on any node): read from the table's change feed."""
        with self._feed:
            if self._seq is None:  # nothing cached yet: what ended before now concerns no one
                self._start_feed()
                return []
            rows = self.table.changes(self._seq)
            if rows:
                self._seq = rows[-1].seq
            ended = []
            for row in rows:
                if row.ended is None:
                    continue
                with self._lock:
                    token = self._by_digest.get(row.digest)
                if token is not None:
                    self._forget(token)
                    ended.append((token, row.why or "the session ended"))
        return ended

    def count(self) -> int:
        """Sessions open on every node. Not ``__len__``: an empty store must stay truthy
        (``sessions or SessionStore()``)."""
        return self.table.open_count(self._clock())


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
        failures: FailureTable | None = None,
    ) -> None:
        self.users = users
        self.sessions = sessions or SessionStore()
        self.api_tokens = api_tokens
        self.on_login = on_login
        self.on_logout = on_logout
        settings = throttle or ThrottleSettings()
        # ``failures``: the history's table, shared by the nodes; None: one in memory.
        failures = failures if failures is not None else MemoryFailureTable()
        self.user_throttle = Throttle(settings.user, table=failures, name="user")
        self.address_throttle = Throttle(settings.address, table=failures, name="address")
        self.token_throttle = Throttle(settings.token, table=failures, name="token")
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
        ended = self.sessions.close_user(user, keep, reason=reason, why=why)
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
        """End every session of every node; each fires ``logout`` with ``reason``. (A node
        that stops ends none: sessions belong to every node sharing the database.)"""
        for session in self.sessions.close_all(reason):
            self._hook(self.on_logout, session.user, session.address, reason)

    def follow(self) -> int:
        """Close what ended elsewhere: the connections of every session another node (or
        another process on the same database) ended since the last call. Returns how many."""
        ended = self.sessions.follow()
        for token, why in ended:
            self._tell(token, why)
        return len(ended)

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
        if not token:  # a session this node never saw has no connection here
            return
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
