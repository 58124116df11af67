"""API tokens and the admin credentials file of a data directory.

- *API tokens* for device controllers live in the history database (the
  ``api_tokens`` table, :mod:`linkserver.history.api_tokens`), so every node
  of a cluster accepts the same ones; each has a name, grants and an
  optional expiry. The table holds only a SHA-256 of each token (tokens are
  256-bit random secrets, so a slow hash buys nothing); the token itself,
  ``NAME.SECRET``, is shown once by :func:`create_token`. An older
  ``<data_dir>/tokens.json`` is moved into the table at start
  (:func:`import_token_file`).
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
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from linkserver.core.errors import LinkServerError
from linkserver.core.levels import Permission
from linkserver.core.paths import check_name, compile_mask
from linkserver.core.permissions import Grants, Principal
from linkserver.history.api_tokens import StoredToken, TokenTable
from linkserver.server.passwords import check_password_hash, hash_password

log = logging.getLogger("linkserver.net.auth")


def secret_text(nbytes: int) -> str:
    """A URL-safe random secret of ``nbytes`` that never begins with ``-``: given after an
    option on a command line (``--token``, ``--password``), one that did was read as an option
    (``--token: expected one argument``), one time in 64."""
    while True:
        text = secrets.token_urlsafe(nbytes)
        if not text.startswith("-"):
            return text


TOKENS_FILE = "tokens.json"
CREDENTIALS_FILE = "admin.credentials"
ADMIN_HASH_FILE = "admin.hash"
ADMIN = "admin"


# -- API tokens ----------------------------------------------------------------------------


def _token_digest(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def create_token(
    table: TokenTable, name: str, grants: Mapping[str, str | Permission], lifetime: timedelta | None = None
) -> str:
    """Create (or replace) the API token ``name`` with ``grants``; returns the token, shown once."""
    check_name(name, "token name")
    checked = {}
    for mask, level in grants.items():
        compile_mask(mask)  # InvalidName if it is not a mask
        checked[mask] = str(Permission.parse(level))
    secret = secret_text(32)
    now = datetime.now(UTC)
    table.put(
        StoredToken(
            name=name,
            digest=_token_digest(secret),
            grants=checked,
            created=now,
            expires=now + lifetime if lifetime is not None else None,
        )
    )
    return f"{name}.{secret}"


def revoke_token(table: TokenTable, name: str) -> bool:
    """Remove the API token ``name``; False if there was none."""
    return table.remove(name)


def list_tokens(table: TokenTable) -> dict[str, dict[str, Any]]:
    """Name -> ``{grants, created, expires}`` (never the digest); times as ISO 8601 text."""
    return {
        token.name: {
            "grants": dict(token.grants),
            "created": token.created.isoformat(),
            "expires": token.expires.isoformat() if token.expires is not None else None,
        }
        for token in table.all()
    }


def import_token_file(data_dir: Path | str, table: TokenTable, *, keep_file: bool = False) -> list[str]:
    """Move the tokens of an older ``<data_dir>/tokens.json`` into ``table``.

    Tokens whose name the table already has keep the table's; the file is
    renamed ``tokens.json.imported`` so that nobody edits a file no node reads
    any more, unless ``keep_file`` (a history in memory forgets the tokens at
    every stop: the file is read again at the next start). Returns the names
    imported.
    """
    path = Path(data_dir) / TOKENS_FILE
    if not path.exists():
        return []
    document = json.loads(path.read_text())
    raw = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected {{"tokens": {{NAME: {{...}}}}}}; fix or remove the file')
    tokens = []
    for name, entry in raw.items():
        try:
            expires = entry.get("expires")
            tokens.append(
                StoredToken(
                    name=name,
                    digest=str(entry["hash"]),
                    grants={str(mask): str(level) for mask, level in (entry.get("grants") or {}).items()},
                    created=datetime.fromisoformat(entry["created"]),
                    expires=datetime.fromisoformat(expires) if expires else None,
                )
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            log.error("API token %r in %s is invalid (%s); it is not imported", name, path, exc)
    imported = table.add_missing(tokens)
    if keep_file:
        log.info("read %d API token(s) from %s into the history in memory", len(imported), path)
        return imported
    os.replace(path, path.with_name(TOKENS_FILE + ".imported"))
    log.warning(
        "moved %d API token(s) from %s into the history database (%s kept there already); "
        "the file is now %s.imported and no longer read",
        len(imported),
        path,
        len(tokens) - len(imported),
        TOKENS_FILE,
    )
    return imported


class ApiTokens:
    """The API tokens of a history database as this node knows them.

    :meth:`changed` rereads the table (the server calls it twice a second, so
    a token revoked on another node stops working here within that; a change
    made in this process is read at once); a token
    this node does not know, or knows with another secret, makes it reread at
    once (at most every ``MISS_REREAD`` seconds), so a token created on
    another node works here at once.
    """

    MISS_REREAD = 0.1

    def __init__(self, table: TokenTable, clock: Callable[[], datetime] | None = None) -> None:
        self._table = table
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tokens: list[StoredToken] | None = None
        self._entries: dict[str, tuple[str, Principal, datetime | None]] = {}
        self._read_at = 0.0
        self._seen_writes = -1
        self._lock = threading.Lock()

    def resolve(self, token: str) -> Principal | None:
        """The principal of a valid ``NAME.SECRET`` token, else None (unknown, wrong or expired)."""
        name, dot, secret = token.partition(".")
        if not dot:
            return None
        digest = _token_digest(secret)
        entry = self._known().get(name)
        if (entry is None or not hmac.compare_digest(entry[0], digest)) and self._may_reread():
            self.changed()
            entry = self._entries.get(name)
        if entry is None or not hmac.compare_digest(entry[0], digest):
            return None
        if entry[2] is not None and entry[2] <= self._clock():
            return None
        return entry[1]

    def changed(self) -> bool:
        """Reread the table; True if the tokens changed since the last look."""
        writes = self._table.writes
        try:
            tokens = self._table.all()
        except LinkServerError as exc:  # keep the last known tokens while the database is away
            log.warning("cannot reread the API tokens (%s); the last known ones stay in force", exc)
            return False
        with self._lock:
            self._read_at, self._seen_writes = time.monotonic(), writes
            if tokens == self._tokens:
                return False
            self._tokens, self._entries = tokens, self._parse(tokens)
            return True

    def _known(self) -> dict[str, tuple[str, Principal, datetime | None]]:
        if self._table.writes != self._seen_writes:
            self.changed()
        return self._entries

    def _may_reread(self) -> bool:
        return time.monotonic() - self._read_at >= self.MISS_REREAD

    @staticmethod
    def _parse(tokens: list[StoredToken]) -> dict[str, tuple[str, Principal, datetime | None]]:
        entries = {}
        for token in tokens:
            try:
                principal = Principal(name=token.name, grants=Grants(token.grants), is_component=True)
            except (ValueError, LinkServerError) as exc:
                log.error("API token %r has invalid grants (%s); it is not accepted", token.name, exc)
                continue
            entries[token.name] = (token.digest, principal, token.expires)
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
    password = secret_text(24)
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
