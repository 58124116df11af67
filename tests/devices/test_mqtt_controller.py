"""The MQTT device controller against the real Mosquitto: topics to device contexts and events,
the last will as ``disconnected``, poison messages, a broker that is not there yet."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from mqtt_helpers import Mosquitto, Publisher, start_device, wait_until

from linkserver import HistoryQuery
from linkserver.devices.mqtt import MqttController
from linkserver.devices.mqtt_broker import BrokerAddress, MqttConfigError, TopicTemplate
from linkserver.testing import CapturingListener, RunningServer

PLANT = {"devices.**": "operator"}  # what the controller's principal may do


@contextmanager
def serving(
    url: str, prefix: str, *, principal: str | None = "plant", users: dict | None = None, **options: object
) -> Iterator[tuple[RunningServer, MqttController, CapturingListener]]:
    options.setdefault("client_id", prefix)
    options.setdefault("persistent_session", False)  # no session left on the broker after the test
    controller = MqttController(url=url, topic=f"{prefix}/{{device}}/{{event}}", **options)
    with RunningServer(users=users if users is not None else {"plant": PLANT}) as live:
        seen = CapturingListener()
        live.server.listen("devices.**", "*", seen)
        live.server.add_controller("mqtt", controller, principal=principal)
        assert controller.wait_connected(10), "the controller did not connect to the broker"
        yield live, controller, seen


def fired(seen: CapturingListener, name: str | None = None) -> list[tuple[str, str, list[dict]]]:
    return [
        (event.context, event.name, [dict(record) for record in event.data or ()])
        for event in list(seen.events)
        if event.context.startswith("devices.") and (name is None or event.name == name)
    ]


def test_a_message_fires_its_event_in_the_device_context_added_on_first_message(mqtt_url, prefix, publisher):
    with serving(mqtt_url, prefix) as (live, controller, seen):
        assert live.server.tree.find("devices.pump7") is None
        publisher.publish(f"{prefix}/pump7/connected", '{"address": "10.0.0.7", "firmware": "2.1"}')
        publisher.publish(f"{prefix}/pump7/measurement", '[{"quantity": "temperature", "value": 21.5}]')
        wait_until(lambda: len(fired(seen)) == 2, what="two device events")
        assert fired(seen) == [
            ("devices.pump7", "connected", [{"address": "10.0.0.7", "firmware": "2.1"}]),
            ("devices.pump7", "measurement", [{"quantity": "temperature", "value": 21.5, "unit": ""}]),
        ]
        assert live.server.tree.find("devices.pump7") is not None
        assert {event.author for event in seen.events if event.context == "devices.pump7"} == {"plant"}
        assert controller.outcomes["fired"] == 2
        assert controller.connected_devices == {"pump7"}
        assert live.server.device_owners.owner_of("devices.pump7").controller == "mqtt"


def test_the_last_will_of_a_killed_device_process_fires_disconnected(mqtt_url, prefix):
    with serving(mqtt_url, prefix) as (live, controller, seen):
        device = start_device(mqtt_url, prefix, "press3", 'connected={"address": "plc://press3"}')
        try:
            wait_until(lambda: fired(seen, "connected"), what="connected")
            assert controller.connected_devices == {"press3"}
            device.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker publishes the will
            device.wait(10)
            wait_until(lambda: fired(seen, "disconnected"), what="disconnected from the last will")
        finally:
            device.kill()
            device.wait(10)
        assert fired(seen, "disconnected") == [("devices.press3", "disconnected", [{"reason": "lost"}])]
        assert controller.connected_devices == set()


def test_a_device_that_disconnects_cleanly_leaves_no_will(mqtt_url, prefix):
    with serving(mqtt_url, prefix) as (live, controller, seen):
        device = start_device(mqtt_url, prefix, "valve1", "connected={}", leave=True)
        assert device.wait(10) == 0
        publisher = Publisher(mqtt_url)
        publisher.publish(f"{prefix}/valve1/stateChanged", '{"old": "starting", "new": "online"}')
        publisher.close()
        wait_until(lambda: fired(seen, "stateChanged"), what="stateChanged")
        assert [name for _, name, _ in fired(seen)] == ["connected", "stateChanged"]


POISON = [
    ("bad_topic", "{prefix}/pump-7/connected", b"{}"),
    ("invalid_json", "{prefix}/pump1/connected", b'{"address": '),
    ("invalid_json", "{prefix}/pump1/connected", b"\xff\xfe"),
    ("unknown_event", "{prefix}/pump1/exploded", b"{}"),
    ("invalid_data", "{prefix}/pump1/measurement", b'[{"quantity": "t", "value": "hot"}]'),
    ("invalid_data", "{prefix}/pump1/error", b'{"code": "E1"}'),
    ("invalid_data", "{prefix}/pump1/connected", b"42"),
    ("oversize", "{prefix}/pump1/connected", json.dumps({"address": "x" * 2000}).encode()),
]


def test_poison_messages_are_logged_counted_and_never_stop_the_controller(
    mqtt_url, prefix, publisher, caplog
):
    caplog.set_level(logging.WARNING, logger="linkserver.controllers.mqtt")
    with serving(mqtt_url, prefix, max_payload=1024) as (live, controller, seen):
        for _, topic, payload in POISON:
            publisher.publish(topic.format(prefix=prefix), payload)
        publisher.publish(f"{prefix}/pump1/connected", '{"address": "after the poison"}')
        wait_until(lambda: fired(seen, "connected"), what="the valid message after the poison")
        expected: dict[str, int] = {}
        for outcome, _, _ in POISON:
            expected[outcome] = expected.get(outcome, 0) + 1
        assert {k: v for k, v in controller.outcomes.items() if k != "fired"} == expected
        assert fired(seen) == [
            ("devices.pump1", "connected", [{"address": "after the poison", "firmware": None}])
        ]
        lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert len(lines) == len(POISON)
        assert any("pump-7" in line and "bad_topic" in line for line in lines)
        assert any("'exploded' is not defined" in line for line in lines)
        assert any("value" in line and "invalid_data" in line for line in lines)
        assert any("max_payload" in line for line in lines)
        # No context was left behind for the rejected first messages of a new device.
        assert [c.path for c in live.server.tree.find("devices").children.values()] == ["devices.pump1"]
        with live.http("admin") as http:
            metrics = http.get(f"{live.url}/metrics").text
        assert 'linkserver_mqtt_messages_total{controller="mqtt",outcome="invalid_json"} 2.0' in metrics
        assert 'linkserver_mqtt_messages_total{controller="mqtt",outcome="fired"} 1.0' in metrics
        assert 'linkserver_mqtt_connected{controller="mqtt"} 1.0' in metrics


def test_a_principal_without_the_fire_permission_gets_nothing_fired(mqtt_url, prefix, publisher):
    users = {"plant": {"devices.**": "observer"}}
    with serving(mqtt_url, prefix, users=users) as (live, controller, seen):
        publisher.publish(f"{prefix}/pump1/connected", "{}")
        wait_until(lambda: controller.outcomes["forbidden"] == 1, what="forbidden")
        assert fired(seen) == []
        assert live.server.tree.find("devices.pump1") is None


def test_retained_messages_are_ignored_unless_accepted(mqtt_url, prefix, publisher):
    publisher.publish(f"{prefix}/old1/connected", "{}", retain=True)
    try:
        with serving(mqtt_url, prefix) as (live, controller, seen):
            wait_until(lambda: controller.outcomes["retained"] == 1, what="the retained message")
            assert fired(seen) == []
        with serving(mqtt_url, prefix, client_id=prefix + "-accept", retained="accept") as (
            live,
            controller,
            seen,
        ):
            wait_until(lambda: fired(seen, "connected"), what="the accepted retained message")
    finally:
        publisher.publish(f"{prefix}/old1/connected", b"", retain=True)  # clears it on the broker


def test_messages_published_while_linkserver_is_down_arrive_after_it_starts(mqtt_url, prefix, publisher):
    with serving(mqtt_url, prefix, persistent_session=True):
        pass  # the broker now keeps the session of client id `prefix`
    for n in range(5):
        publisher.publish(f"{prefix}/pump1/measurement", json.dumps([{"quantity": "n", "value": n}]))
    with serving(mqtt_url, prefix, persistent_session=True) as (live, controller, seen):
        wait_until(lambda: len(fired(seen, "measurement")) == 5, what="the queued messages")
        assert [records[0]["value"] for _, _, records in fired(seen, "measurement")] == [0, 1, 2, 3, 4]
    with Publisher(mqtt_url, client_id=prefix, clean_session=True):
        pass  # connecting with a clean session ends the one the broker kept


def test_durable_acknowledges_a_message_once_its_event_is_committed(mqtt_url, prefix, publisher, tmp_path):
    controller = MqttController(
        url=mqtt_url, topic=f"{prefix}/{{device}}/{{event}}", durable=True, client_id=prefix
    )
    with RunningServer(tmp_path / "data", users={"plant": PLANT}, database_url="sqlite") as live:
        live.server.add_controller("mqtt", controller, principal="plant")
        assert controller.wait_connected(10)
        publisher.publish(f"{prefix}/pump1/error", '{"code": "E7", "message": "jammed"}')
        wait_until(lambda: controller.outcomes["fired"] == 1, what="fired")
        # No flush: the controller returned (and acknowledged) only after the commit.
        page = live.server.access.query(HistoryQuery(masks=("devices.pump1",)), None)
        assert [(e.name, e.data[0]["code"]) for e in page.events] == [("error", "E7")]


def test_the_server_starts_without_the_broker_says_so_and_connects_when_it_comes(
    own_mosquitto, prefix, caplog
):
    caplog.set_level(logging.INFO, logger="linkserver.controllers.mqtt")
    controller = MqttController(
        url=own_mosquitto.url, topic=f"{prefix}/{{device}}/{{event}}", reconnect_max="1s"
    )
    with RunningServer(users={"plant": PLANT}) as live:
        seen = CapturingListener()
        live.server.listen("devices.**", "*", seen)
        live.server.add_controller("mqtt", controller, principal="plant")
        wait_until(lambda: controller.connection.stats.failures >= 2, what="connection attempts")
        assert not controller.wait_connected(0)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("cannot reach the MQTT broker" in w and str(own_mosquitto.port) in w for w in warnings)
        assert len(warnings) == 1, "one line for the outage, not one per attempt"
        with live.http("admin") as http:
            assert 'linkserver_mqtt_connected{controller="mqtt"} 0.0' in http.get(f"{live.url}/metrics").text
        own_mosquitto.start()
        assert controller.wait_connected(15)
        with Publisher(own_mosquitto.url) as publisher:
            publisher.publish(f"{prefix}/pump1/connected", "{}")
            wait_until(lambda: fired(seen, "connected"), what="an event once the broker is there")
        assert any("answers again" in r.getMessage() for r in caplog.records)


def test_wrong_credentials_are_said_with_a_hint_and_retried(prefix, caplog):
    broker = Mosquitto(users={"plant": "right"})
    broker.start()
    try:
        caplog.set_level(logging.WARNING, logger="linkserver.controllers.mqtt")
        url = broker.url.replace("mqtt://", "mqtt://plant:wrong@")
        controller = MqttController(url=url, topic=f"{prefix}/{{device}}/{{event}}", reconnect_max="1s")
        with RunningServer(users={"plant": PLANT}) as live:
            live.server.add_controller("mqtt", controller, principal="plant")
            wait_until(lambda: controller.connection.stats.failures >= 2, what="refused attempts")
            assert not controller.wait_connected(0)
            (line,) = [r.getMessage() for r in caplog.records]
            assert "refused the connection" in line and "check 'username'/'password'" in line
            assert "wrong" not in line  # the password is never logged
        right = MqttController(
            url=broker.url, username="plant", password="right", topic=f"{prefix}/{{device}}/{{event}}"
        )
        with RunningServer(users={"plant": PLANT}) as live:
            live.server.add_controller("mqtt", right, principal="plant")
            assert right.wait_connected(10)
    finally:
        broker.stop()


def test_the_broker_restarting_under_the_controller_is_survived(own_mosquitto, prefix):
    own_mosquitto.start()
    controller = MqttController(
        url=own_mosquitto.url, topic=f"{prefix}/{{device}}/{{event}}", reconnect_max="1s"
    )
    with RunningServer(users={"plant": PLANT}) as live:
        seen = CapturingListener()
        live.server.listen("devices.**", "*", seen)
        live.server.add_controller("mqtt", controller, principal="plant")
        assert controller.wait_connected(10)
        own_mosquitto.stop()
        wait_until(lambda: not controller.connection.connected.is_set(), what="the loss")
        own_mosquitto.start()
        assert controller.wait_connected(15)
        with Publisher(own_mosquitto.url) as publisher:
            publisher.publish(f"{prefix}/pump2/connected", "{}")
            wait_until(lambda: fired(seen, "connected"), what="an event after the restart")


def test_stopping_the_server_disconnects_the_connected_devices(mqtt_url, prefix, publisher):
    with serving(mqtt_url, prefix) as (live, controller, seen):
        publisher.publish(f"{prefix}/pump1/connected", "{}")
        wait_until(lambda: fired(seen, "connected"), what="connected")
        live.server.stop()
        assert fired(seen, "disconnected") == [("devices.pump1", "disconnected", [{"reason": "stopped"}])]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker:1883", "must look like mqtt://host:1883"),
        ("mqtt://", "must look like"),
        ("mqtt://broker:99999", "out of range"),
        ("mqtt://broker/topic", "path or query"),
    ],
)
def test_a_wrong_broker_url_is_refused_saying_what_to_write(url, problem):
    with pytest.raises(MqttConfigError, match=problem):
        BrokerAddress.parse(url)


def test_broker_address_keeps_credentials_out_of_its_text():
    address = BrokerAddress.parse("mqtt://plant:s%40cret@broker.example")
    assert (address.host, address.port, address.username, address.password) == (
        "broker.example",
        1883,
        "plant",
        "s@cret",
    )
    assert str(address) == "mqtt://plant@broker.example:1883"
    assert BrokerAddress.parse("mqtts://broker", username="u", password="p").port == 8883
    with pytest.raises(MqttConfigError) as caught:
        BrokerAddress.parse("ftp://u:hunter2@broker")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("devices/{device}", r"lacks \{event\}"),
        ("devices/{device}/{evnt}", r"unknown placeholder \{evnt\}"),
        ("devices/x{device}/{event}", "whole level"),
        ("devices/+/{device}/{event}", "wildcard"),
        ("{device}/{event}/{device}", "twice"),
        ("", "non-empty"),
    ],
)
def test_a_wrong_topic_template_is_refused(template, problem):
    with pytest.raises(MqttConfigError, match=problem):
        TopicTemplate(template, fields=("device", "event"), required=("device", "event"))


def test_a_topic_template_matches_and_builds_topics():
    template = TopicTemplate(
        "plant/{device}/ev/{event}", fields=("device", "event"), required=("device", "event")
    )
    assert template.filter == "plant/+/ev/+"
    assert template.match("plant/pump1/ev/connected") == {"device": "pump1", "event": "connected"}
    assert template.match("plant/pump1/connected") is None
    assert template.match("plant//ev/connected") is None
    assert template.match("other/pump1/ev/connected") is None
    assert template.format({"device": "p", "event": "e"}) == "plant/p/ev/e"


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"qos": 3}, "'qos'"), ({"retained": "keep"}, "'retained'"), ({"max_payload": 0}, "'max_payload'")],
)
def test_wrong_options_are_refused(options, problem):
    with pytest.raises(MqttConfigError, match=problem):
        MqttController(**options)


def test_the_controller_runs_remotely_over_the_network_api_too(mqtt_url, prefix, publisher):
    from linkserver.client.controllers import RemoteDeviceHandle

    controller = MqttController(
        url=mqtt_url, topic=f"{prefix}/{{device}}/{{event}}", persistent_session=False
    )
    users = {"plant": {"devices.**": "admin"}, "weak": {"devices.**": "operator"}}
    with RunningServer(users=users) as live, live.client("plant") as client:
        seen = CapturingListener()
        live.server.listen("devices.**", "*", seen)
        controller.start(RemoteDeviceHandle(client, "mqtt_remote"))
        try:
            assert controller.wait_connected(10)
            publisher.publish(f"{prefix}/pump9/connected", '{"address": "remote"}')
            publisher.publish(f"{prefix}/pump9/exploded", "{}")
            wait_until(lambda: controller.outcomes.total() == 2, what="both messages")
            assert controller.outcomes == {"fired": 1, "unknown_event": 1}
            assert fired(seen, "connected") == [
                ("devices.pump9", "connected", [{"address": "remote", "firmware": None}])
            ]
            assert [e.author for e in seen.events if e.name == "connected"] == ["plant"]
        finally:
            controller.stop()
        # A user who may fire but not add device contexts: refused, said, counted.
        weak = MqttController(url=mqtt_url, topic=f"{prefix}/{{device}}/{{event}}", persistent_session=False)
        with live.client("weak") as other:
            weak.start(RemoteDeviceHandle(other, "mqtt_weak"))
            try:
                assert weak.wait_connected(10)
                publisher.publish(f"{prefix}/pump10/connected", "{}")
                wait_until(lambda: weak.outcomes["forbidden"] == 1, what="forbidden")
            finally:
                weak.stop()


def test_a_connection_taken_over_again_and_again_says_the_client_id_is_shared(mqtt_url, prefix, caplog):
    caplog.set_level(logging.WARNING, logger="linkserver.controllers.mqtt")
    with serving(mqtt_url, prefix) as (live, controller, seen):
        for _ in range(2):  # a second client with the controller's id: the broker closes the older
            assert controller.wait_connected(15)
            with Publisher(mqtt_url, client_id=prefix):
                wait_until(lambda: not controller.wait_connected(0), what="the connection taken over")
        lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
        assert len(lost) == 2, lost
        assert "client id" not in lost[0], "one lost connection is no sign of a shared client id"
        assert f"its own 'client_id' (this one is {prefix!r})" in lost[1]
        assert controller.wait_connected(15), "it goes on reconnecting"
