"""Secrets LinkServer makes (session tokens, API token secrets, the admin password) can be given
after an option on a command line: none begins with '-'."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linkserver.net import tokens
from linkserver.net.auth import SessionStore


def test_a_secret_that_would_begin_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: Iterator[str] = iter(["-looks-like-an-option", "-again", "fine-after-all"])
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda nbytes: next(drawn))
    assert tokens.secret_text(32) == "fine-after-all"


def test_session_tokens_never_begin_with_a_dash() -> None:
    sessions = SessionStore()
    # token_urlsafe begins with '-' once in 64 draws: 2,000 sessions would all but surely show one.
    assert not [s.token for s in (sessions.open("alice") for _ in range(2000)) if s.token.startswith("-")]
