"""API tokens and the admin credentials file of a data directory.

- *API tokens* for device controllers live in ``<data_dir>/tokens.json``,
  each with a name, grants and an optional expiry. The file holds only a
  SHA-256 of each token (tokens are 256-bit random secrets, so a slow hash
  buys nothing); the token itself, ``NAME.SECRET``, is shown once by
  :func:`create_token`. The server rereads the file when it changes.
- When the ``admin`` user has no password hash, the first start writes
  ``<data_dir>/admin.credentials`` (mode 0600) with a random password and
  keeps its hash in ``<data_dir>/admin.hash``, so later starts keep the same
  secret. Local tools read the credentials file with
  :func:`read_admin_credentials`. When someone sets the admin's password,
  both files go (:func:`forget_admin_credentials`): the password is no
  longer one the server made up.
"""

from __future__ import annotations

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

from linkserver.core.levels import Permission
from linkserver.core.paths import check_name, compile_mask
from linkserver.core.permissions import Grants, Principal
from linkserver.server.passwords import check_password_hash, hash_password

log = logging.getLogger("linkserver.net.auth")

TOKENS_FILE = "tokens.json"
CREDENTIALS_FILE = "admin.credentials"
ADMIN_HASH_FILE = "admin.hash"
ADMIN = "admin"


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

    def changed(self) -> bool:
        """Reread the file if it changed since the last look; True if it did."""
        before = self._stamp
        self._load()
        return self._stamp != before

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


def forget_admin_credentials(data_dir: Path | str) -> bool:
    """Delete the generated admin credentials (the admin's password was set by someone);
    True if there were any."""
    removed = False
    for name in (CREDENTIALS_FILE, ADMIN_HASH_FILE):
        try:
            (Path(data_dir) / name).unlink()
            removed = True
        except FileNotFoundError:
            pass
    return removed
