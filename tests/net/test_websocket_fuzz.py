"""Hypothesis-generated WebSocket messages against a live server: every one is answered.

Messages are drawn from the declared shapes (each message type with its own
keys, values of every JSON kind, lone surrogates, numbers beyond 64 bits or a
double, ids beyond any event) and from plain junk. After each message the
session must answer exactly once with the message's ``ref`` (or ``null`` when
it could not be read) and still answer a ping: a session that stops answering,
or a connection that closes, is a failure. Bounded: a few hundred messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from net_helpers import Live, write_config

from linkserver.wire import shapes

EXAMPLES = 150

NASTY_TEXT = st.sampled_from(["\ud800", "a\udfffb", "", " ", "root", "**", "*", "devices.**", "x" * 300])
NASTY_NUMBERS = st.sampled_from(
    [0, -1, 1, 2**63 - 1, 2**63, 2**64, 10**40, -(2**70), 1.5, 1e308, -0.0, True, False]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
JSON = st.recursive(
    st.one_of(SCALARS, NASTY_TEXT, NASTY_NUMBERS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), NASTY_TEXT), inner, max_size=4),
    ),
    max_leaves=12,
)


def _fields(shape: type) -> list[str]:
    return [f.name for f in msgspec.structs.fields(shape)]


MESSAGE_SHAPES = {
    "fire": shapes.FireMessage,
    "fire_batch": shapes.FireBatchMessage,
    "subscribe": shapes.SubscribeMessage,
    "unsubscribe": shapes.UnsubscribeMessage,
    "ping": shapes.PingMessage,
}


@st.composite
def messages(draw: Any, device: str) -> dict[str, Any]:
    kind = draw(st.sampled_from([*MESSAGE_SHAPES, "dance", None]))
    message: dict[str, Any] = {} if kind is None else {"type": kind}
    known = _fields(MESSAGE_SHAPES[kind]) if kind in MESSAGE_SHAPES else ["ref", "context"]
    for key in draw(st.lists(st.sampled_from([*known, "extra"]), max_size=len(known) + 1, unique=True)):
        plausible = {
            "context": st.sampled_from([device, "devices", "root", ""]),
            "mask": st.sampled_from([device, "devices.*", "**", ""]),
            "event": st.sampled_from(["measurement", "connected", "*", "nope"]),
            "filter": st.sampled_from(["data.value > 1", "data.valu > 1", "level >>", "level >= WARNING"]),
            "resume_from": st.sampled_from([0, 1, 2**63 - 1, 2**63, 10**30, -5]),
            "events": st.lists(JSON, max_size=3),
        }.get(key)
        message[key] = draw(st.one_of(plausible, JSON) if plausible is not None else JSON)
    return message


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory: Path = tmp_path_factory.mktemp("wsfuzz")
    server = Live(write_config(directory, database_url=f"sqlite:///{directory / 'history.sqlite3'}"))
    yield server
    server.stop()


def _expected_ref(text: str, message: dict[str, Any]) -> Any:
    """The ``ref`` the answer must carry: the message's, unless the text is not even JSON the
    server reads (a lone surrogate anywhere) or the ref is not an integer or a string."""
    try:
        msgspec.json.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    ref = message.get("ref")
    return ref if isinstance(ref, (int, str)) and not isinstance(ref, bool) else None


def _answer_to(ws: Any, ref: Any) -> dict[str, Any]:
    """The next answer (not a push); it must carry ``ref``."""
    while True:
        message = json.loads(ws.recv(timeout=10))
        if message.get("type") in ("event", "events", "gap"):
            continue
        assert message.get("ref") == ref, message
        return message  # type: ignore[no-any-return]


def test_generated_messages_are_each_answered_and_the_session_lives(target: Live) -> None:
    device = target.new_device()
    target.server.fire(device, "connected", durable=True)
    with target.ws("admin") as ws:

        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(message=messages(device))
        def run(message: dict[str, Any]) -> None:
            text = json.dumps(
                message
            )  # lone surrogates travel as \\ud800 escapes, as a client would send them
            ws.send(text)
            answer = _answer_to(ws, _expected_ref(text, message))
            assert answer["type"] in ("error", "fired", "fired_batch", "subscribed", "unsubscribed", "pong")
            if answer["type"] == "error":
                assert answer["error"]["type"] != "InternalError", answer
            ws.send(json.dumps({"type": "ping", "ref": "alive"}))
            assert _answer_to(ws, "alive") == {"type": "pong", "ref": "alive"}

        run()
