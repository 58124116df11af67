"""The AMQP bridge's hand-built publish frames are the bytes pika writes for the same publish."""

from __future__ import annotations

import pika
import pytest
from pika import frame, spec

from linkserver.bridges import amqp_frames

BODY_MAX = 131072 - 8  # pika's default frame_max less a frame's 8 bytes


def pika_bytes(
    channel: int,
    exchange: str,
    key: str,
    body: bytes,
    props: pika.BasicProperties,
    *,
    mandatory: bool,
    body_max: int,
) -> bytes:
    """What pika's Connection._send_message marshals for this basic_publish."""
    method = spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory)
    out = [frame.Method(channel, method).marshal(), frame.Header(channel, len(body), props).marshal()]
    for start in range(0, len(body), body_max):
        out.append(frame.Body(channel, body[start : start + body_max]).marshal())
    return b"".join(out)


CASES = [
    (
        "plain",
        dict(content_type="application/cloudevents+json", delivery_mode=2, message_id="12345"),
        b'{"a":1}',
    ),
    (
        "cluster",
        dict(content_type="application/json", delivery_mode=1, message_id="7", app_id="a/1f3e", type="live"),
        b"[1]",
    ),
    (
        "notice",
        dict(content_type="application/json", delivery_mode=2, type="commits", app_id="b/9"),
        b"[[1,2],[]]",
    ),
    ("no body", dict(delivery_mode=2), b""),
    ("unicode", dict(content_type="application/json", message_id="é"), "ünïcode".encode()),
    (
        "large",
        dict(content_type="application/json", delivery_mode=2, message_id="9"),
        bytes(range(256)) * 1100,
    ),
]


@pytest.mark.parametrize(("props", "body"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
@pytest.mark.parametrize("mandatory", [True, False])
def test_publish_frames_are_the_bytes_pika_writes(props: dict, body: bytes, mandatory: bool) -> None:
    key = "devices.pump7.measurement" if props.get("message_id") != "é" else "geräte.pumpe.messung"
    out: list[bytes] = []
    method = amqp_frames.publish_method("linkserver", key, mandatory=mandatory)
    amqp_frames.publish_frames(out, 3, method, amqp_frames.properties(**props), body, 4096)
    expected = pika_bytes(
        3, "linkserver", key, body, pika.BasicProperties(**props), mandatory=mandatory, body_max=4096
    )
    assert b"".join(out) == expected


def test_a_body_of_exactly_one_frame_and_one_byte_more() -> None:
    for size in (BODY_MAX, BODY_MAX + 1):
        body = b"x" * size
        out: list[bytes] = []
        amqp_frames.publish_frames(
            out, 1, amqp_frames.publish_method("x", "k"), amqp_frames.properties(), body, BODY_MAX
        )
        assert b"".join(out) == pika_bytes(
            1, "x", "k", body, pika.BasicProperties(), mandatory=False, body_max=BODY_MAX
        )


def test_a_routing_key_over_255_bytes_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="255"):
        amqp_frames.publish_method("linkserver", "k" * 256)
