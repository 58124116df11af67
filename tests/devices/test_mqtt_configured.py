"""The MQTT controller as users run it: named in the configuration file, started with the
server, fed by device processes of their own."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from mqtt_helpers import start_device, wait_until

from linkserver import HistoryQuery
from linkserver.loading.shipped import SHIPPED_CONTEXTS
from linkserver.server.controllers import ControllerError
from linkserver.testing import RunningServer


def write_config(directory: Path, url: str, prefix: str, user: str = "plant") -> Path:
    config = f"""
server:
  data_dir: {json.dumps(str(directory / "data"))}
  contexts: [{json.dumps(str(SHIPPED_CONTEXTS))}]
users:
  admin: {{grants: {{"**": admin}}}}
  {user}: {{grants: {{"devices.**": operator}}}}
controllers:
  - name: plant_mqtt
    class: linkserver.devices.mqtt:MqttController
    principal: plant
    options:
      url: {json.dumps(url)}
      topic: "{prefix}/{{device}}/{{event}}"
      client_id: {json.dumps(prefix)}
      persistent_session: false
"""
    path = directory / "linkserver.yaml"
    path.write_text(config)
    return path


def test_a_configured_controller_ingests_what_device_processes_publish(mqtt_url, prefix, tmp_path):
    with RunningServer(config_path=write_config(tmp_path, mqtt_url, prefix)) as live:
        ((name, controller, _),) = live.server.controllers
        assert name == "plant_mqtt" and controller.wait_connected(10)
        devices = [
            start_device(
                mqtt_url,
                prefix,
                f"line{n}",
                "connected={}",
                'stateChanged={"old": "starting", "new": "online"}',
            )
            for n in (1, 2)
        ]
        try:
            wait_until(lambda: controller.outcomes["fired"] == 4, what="4 events from 2 device processes")
            devices[0].send_signal(signal.SIGKILL)
            devices[0].wait(10)
            wait_until(lambda: controller.outcomes["fired"] == 5, what="the will of the killed device")
            assert controller.connected_devices == {"line2"}
            devices[1].send_signal(signal.SIGKILL)
            wait_until(lambda: controller.outcomes["fired"] == 6, what="the will of the other")
        finally:
            for device in devices:
                device.kill()
                device.wait(10)
        live.server.history.flush()
        page = live.server.access.query(HistoryQuery(masks=("devices.*",)), None)
        by_device = {}
        for event in reversed(page.events):
            by_device.setdefault(event.context, []).append(event.name)
        assert by_device == {
            "devices.line1": ["connected", "stateChanged", "disconnected"],
            "devices.line2": ["connected", "stateChanged", "disconnected"],
        }
        assert {event.author for event in page.events} == {"plant"}


def test_a_principal_that_is_no_user_keeps_the_server_from_starting(mqtt_url, prefix, tmp_path):
    with pytest.raises(ControllerError, match="fires as user 'plant', who does not exist"):
        RunningServer(config_path=write_config(tmp_path, mqtt_url, prefix, user="someone_else"))
