"""API tokens kept in the history database, so every node of a cluster accepts the same ones.

A row holds the token's name, a digest of its secret (never the secret),
its grants (mask -> permission level, as text), when it was made and when
it expires. Tokens are few and rarely change, so a node rereads them all
when it looks (see :class:`linkserver.net.tokens.ApiTokens`): no change
feed, nothing to skip.

Every implementation passes the contract suite in ``tests/history/test_api_tokens_store.py``.
"""

from __future__ import annotations

import abc
import threading
from datetime import datetime

import attrs


@attrs.frozen(kw_only=True)
class StoredToken:
    name: str
    digest: str = attrs.field(repr=False)
    grants: dict[str, str] = attrs.field(factory=dict)
    created: datetime
    expires: datetime | None = None


class TokenTable(abc.ABC):
    """The API tokens of one history database. Thread-safe; each method one short transaction.

    ``writes`` counts the changes made through this object, so a reader in the same process
    (the server's :class:`~linkserver.net.tokens.ApiTokens`) rereads at once after them.
    """

    writes = 0

    @abc.abstractmethod
    def put(self, token: StoredToken) -> None:
        """Record ``token``, replacing a token of the same name."""

    @abc.abstractmethod
    def add_missing(self, tokens: list[StoredToken]) -> list[str]:
        """Record those of ``tokens`` whose name is not taken; returns their names."""

    @abc.abstractmethod
    def remove(self, name: str) -> bool:
        """Delete the token ``name``; False if there was none."""

    @abc.abstractmethod
    def all(self) -> list[StoredToken]:
        """Every token, by name."""


class MemoryTokenTable(TokenTable):
    """Tokens in a dict: for tests and the in-memory history."""

    def __init__(self) -> None:
        self._rows: dict[str, StoredToken] = {}
        self._lock = threading.Lock()

    def put(self, token: StoredToken) -> None:
        with self._lock:
            self._rows[token.name] = token
            self.writes += 1

    def add_missing(self, tokens: list[StoredToken]) -> list[str]:
        with self._lock:
            added = [token for token in tokens if token.name not in self._rows]
            self._rows.update((token.name, token) for token in added)
            self.writes += 1
            return [token.name for token in added]

    def remove(self, name: str) -> bool:
        with self._lock:
            self.writes += 1
            return self._rows.pop(name, None) is not None

    def all(self) -> list[StoredToken]:
        with self._lock:
            return [self._rows[name] for name in sorted(self._rows)]
