"""Who is calling: password hashes, session tokens, API tokens and the admin credentials file.

- Passwords are stored as scrypt hashes with a salt of their own
  (``scrypt$n$r$p$salt$key``, base64); :func:`verify_password` compares in
  constant time and never raises on a malformed hash.
- A login opens a *session token* (random, in memory, with an expiry): a
  restart logs everybody out.
- *API tokens* for device controllers live in ``<data_dir>/tokens.json``,
  each with a name, grants and an optional expiry. The file holds only a
  SHA-256 of each token (tokens are 256-bit random secrets, so a slow hash
  buys nothing); the token itself, ``NAME.SECRET``, is shown once by
  :func:`create_token`. The server rereads the file when it changes.
- When the ``admin`` user has no ``password_hash`` in the configuration, the
  first start writes ``<data_dir>/admin.credentials`` (mode 0600) with a
  random password and keeps its hash in ``<data_dir>/admin.hash``, so later
  starts keep the same secret. Local tools read the credentials file with
  :func:`read_admin_credentials`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from linkserver.core.levels import Permission
from linkserver.core.paths import check_name, compile_mask
from linkserver.core.permissions import Grants, Principal
from linkserver.net.codec import AuthenticationFailed

log = logging.getLogger("linkserver.net.auth")

UTC = UTC
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LENGTH = 2**14, 8, 1, 32
TOKENS_FILE = "tokens.json"
CREDENTIALS_FILE = "admin.credentials"
ADMIN_HASH_FILE = "admin.hash"
ADMIN = "admin"
DEFAULT_SESSION_LIFETIME = timedelta(hours=12)
_WRONG = "wrong user name or password"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, salt: bytes | None = None) -> str:
    """A scrypt hash with a fresh 16-byte salt: ``scrypt$n$r$p$salt$key``."""
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=SCRYPT_R,
        p=SCRYPT_P,
        dklen=KEY_LENGTH,
        maxmem=256 * n * SCRYPT_R + 2**20,
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def check_password_hash(encoded: object) -> str | None:
    """What is wrong with a stored hash, or None if it is usable."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        return "not a scrypt hash (scrypt$n$r$p$salt$key); create one with 'hash-password'"
    try:
        n, r, p = (int(x) for x in parts[1:4])
        base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return "malformed scrypt hash"
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or n > 2**20 or not key:
        return "scrypt parameters out of range"
    return None


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches ``encoded``; constant-time, False for malformed hashes."""
    if not isinstance(password, str) or check_password_hash(encoded) is not None:
        return False
    _, n, r, p, salt, key = encoded.split("$")
    expected = base64.b64decode(key)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
        maxmem=256 * int(n) * int(r) * int(p) + 2**20,
    )
    return hmac.compare_digest(actual, expected)


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

    def close_all(self) -> list[SessionToken]:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        return sessions

    def count(self) -> int:
        """Sessions open (expired ones not yet seen included). Not ``__len__``: an empty
        store must stay truthy (``sessions or SessionStore()``)."""
        return len(self._sessions)


# -- API tokens ----------------------------------------------------------------------------


def _token_digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def _read_tokens(data_dir: Path) -> dict[str, Any]:
    path = Path(data_dir) / TOKENS_FILE
    if not path.exists():
        return {}
    document = json.loads(path.read_text())
    tokens = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(tokens, dict):
        raise ValueError(f'{path}: expected {{"tokens": {{NAME: {{...}}}}}}')
    return tokens


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def create_token(
    data_dir: Path | str, name: str, grants: Mapping[str, str | Permission], lifetime: timedelta | None = None
) -> str:
    """Create (or replace) the API token ``name`` with ``grants``; returns the token, shown once."""
    check_name(name, "token name")
    checked = {}
    for mask, level in grants.items():
        compile_mask(mask)  # InvalidName if it is not a mask
        checked[mask] = str(Permission.parse(level))
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    tokens = _read_tokens(directory)
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    tokens[name] = {
        "hash": _token_digest(secret),
        "grants": checked,
        "created": now.isoformat(),
        "expires": (now + lifetime).isoformat() if lifetime is not None else None,
    }
    _write_private(directory / TOKENS_FILE, json.dumps({"tokens": tokens}, indent=2) + "\n")
    return f"{name}.{secret}"


def revoke_token(data_dir: Path | str, name: str) -> bool:
    """Remove the API token ``name``; False if there was none."""
    tokens = _read_tokens(Path(data_dir))
    if tokens.pop(name, None) is None:
        return False
    _write_private(Path(data_dir) / TOKENS_FILE, json.dumps({"tokens": tokens}, indent=2) + "\n")
    return True


def list_tokens(data_dir: Path | str) -> dict[str, dict[str, Any]]:
    """Name -> ``{grants, created, expires}`` (never the hash)."""
    return {
        name: {k: v for k, v in entry.items() if k != "hash"}
        for name, entry in _read_tokens(Path(data_dir)).items()
    }


class ApiTokens:
    """The API tokens of a data directory, reread whenever the file changes."""

    def __init__(self, data_dir: Path | str, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(data_dir) / TOKENS_FILE
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, tuple[str, Principal, datetime | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, token: str) -> Principal | None:
        """The principal of a valid ``NAME.SECRET`` token, else None (unknown, wrong or expired)."""
        name, dot, secret = token.partition(".")
        if not dot:
            return None
        entry = self._load().get(name)
        if entry is None or not hmac.compare_digest(entry[0], _token_digest(secret)):
            return None
        if entry[2] is not None and entry[2] <= self._clock():
            return None
        return entry[1]

    def _load(self) -> dict[str, tuple[str, Principal, datetime | None]]:
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._entries = stamp, self._parse() if stamp is not None else {}
            return self._entries

    def _parse(self) -> dict[str, tuple[str, Principal, datetime | None]]:
        entries = {}
        try:
            raw = _read_tokens(self.path.parent)
        except (ValueError, OSError) as exc:
            log.error("cannot read API tokens from %s: %s; no API token is accepted", self.path, exc)
            return {}
        for name, entry in raw.items():
            try:
                expires = entry.get("expires")
                entries[name] = (
                    str(entry["hash"]),
                    Principal(name=name, grants=Grants(entry.get("grants") or {}), is_component=True),
                    datetime.fromisoformat(expires) if expires else None,
                )
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                log.error("API token %r in %s is invalid (%s); it is not accepted", name, self.path, exc)
        return entries


# -- the admin credentials file ------------------------------------------------------------


def ensure_admin_credentials(data_dir: Path | str, url: str, user: str = ADMIN) -> tuple[str, Path | None]:
    """The admin's password hash, creating the credentials on first start.

    Returns ``(hash, path of the credentials file if it was created now, else None)``.
    An existing credentials file gets the current ``url``; its password is kept.
    """
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    hash_path, credentials = directory / ADMIN_HASH_FILE, directory / CREDENTIALS_FILE
    if hash_path.exists():
        stored = hash_path.read_text().strip()
        if check_password_hash(stored) is None:
            existing = read_admin_credentials(directory)
            if existing is not None and existing.get("url") != url:
                _write_private(credentials, json.dumps({**existing, "url": url}, indent=2) + "\n")
            elif existing is None:
                log.warning(
                    "%s is missing: the admin password is unknown; delete %s and restart "
                    "to create new credentials",
                    credentials,
                    hash_path,
                )
            return stored, None
        log.warning("%s is not a valid password hash; creating new admin credentials", hash_path)
    password = secrets.token_urlsafe(24)
    encoded = hash_password(password)
    _write_private(credentials, json.dumps({"user": user, "password": password, "url": url}, indent=2) + "\n")
    _write_private(hash_path, encoded + "\n")
    return encoded, credentials


def read_admin_credentials(data_dir: Path | str) -> dict[str, Any] | None:
    """``{"user", "password", "url"}`` from the credentials file, or None if absent or unreadable."""
    try:
        document = json.loads((Path(data_dir) / CREDENTIALS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


# -- the authenticator ---------------------------------------------------------------------

LoginHook = Callable[[str, str | None], None]
LogoutHook = Callable[[str, str | None, str], None]


class Authenticator:
    """Logs users in and out and turns tokens into principals.

    ``principals`` are the configured users, ``hashes`` their password hashes
    (a user without one cannot log in with a password). ``on_login(user,
    address)`` and ``on_logout(user, address, reason)`` run after the fact
    and may not fail the call.
    """

    def __init__(
        self,
        principals: Mapping[str, Principal],
        hashes: Mapping[str, str | None],
        *,
        data_dir: Path | str | None = None,
        sessions: SessionStore | None = None,
        on_login: LoginHook | None = None,
        on_logout: LogoutHook | None = None,
    ) -> None:
        self.principals = dict(principals)
        self.hashes = dict(hashes)
        self.sessions = sessions or SessionStore()
        self.api_tokens = ApiTokens(data_dir) if data_dir is not None else None
        self.on_login = on_login
        self.on_logout = on_logout
        self._dummy: str | None = None
        for name, encoded in self.hashes.items():
            problem = check_password_hash(encoded) if encoded is not None else None
            if problem:
                log.error("user %s cannot log in: its password_hash is %s", name, problem)

    def login(self, user: object, password: object, address: str | None = None) -> SessionToken:
        """Open a session; AuthenticationFailed with the same message for wrong user or password."""
        if not isinstance(user, str) or not isinstance(password, str):
            raise AuthenticationFailed("give 'user' and 'password' as strings")
        encoded = self.hashes.get(user)
        if encoded is None or user not in self.principals:
            verify_password(password, self._dummy_hash())  # the same time as a wrong password
            ok = False
        else:
            ok = verify_password(password, encoded)
        if not ok:
            log.warning("failed login for user %r from %s", user, address or "unknown address")
            raise AuthenticationFailed(_WRONG)
        for expired in self.sessions.sweep():
            self._hook(self.on_logout, expired.user, expired.address, "timeout")
        session = self.sessions.open(user, address)
        self._hook(self.on_login, user, address)
        return session

    def logout(self, token: str, address: str | None = None) -> None:
        session = self.sessions.close(token)
        if session is not None:
            self._hook(self.on_logout, session.user, address, "logout")

    def close_all(self, reason: str = "closed") -> None:
        """End every session (at shutdown); each fires ``logout`` with ``reason``."""
        for session in self.sessions.close_all():
            self._hook(self.on_logout, session.user, session.address, reason)

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a session or API token; AuthenticationFailed otherwise."""
        if not token:
            raise AuthenticationFailed(
                "authentication required: send 'Authorization: Bearer TOKEN' (POST /api/v1/login gives one)"
            )
        session, expired = self.sessions.get(token)
        if session is not None and session.user in self.principals:
            return self.principals[session.user]
        if expired is not None:
            self._hook(self.on_logout, expired.user, expired.address, "timeout")
            raise AuthenticationFailed("the session token has expired; log in again")
        principal = self.api_tokens.resolve(token) if self.api_tokens is not None else None
        if principal is None:
            raise AuthenticationFailed("unknown or expired token; log in again")
        return principal

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = hash_password(secrets.token_urlsafe(8))
        return self._dummy

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
