"""A device in a process of its own, for the MQTT tests: connects to the broker with its last
will set to ``disconnected``, publishes the messages named on the command line (QoS 1, each
acknowledged), prints ``ready`` and then waits until it is killed (or exits with ``--exit``).

    python mqtt_device.py URL PREFIX DEVICE [EVENT=JSON ...] [--exit]
"""

from __future__ import annotations

import sys
import time
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


def main(argv: list[str]) -> int:
    url, prefix, device, *rest = argv
    leave = "--exit" in rest
    messages = [item.partition("=") for item in rest if item != "--exit"]
    address = urlsplit(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{prefix}-{device}"[:200])
    # The broker publishes this when the connection dies without a DISCONNECT (a kill, a lost network).
    client.will_set(f"{prefix}/{device}/disconnected", '{"reason": "lost"}', qos=1)
    client.connect(address.hostname or "127.0.0.1", address.port or 1883, keepalive=5)
    client.loop_start()
    for event, _, payload in messages:
        client.publish(f"{prefix}/{device}/{event}", payload.encode(), qos=1).wait_for_publish(10)
    print("ready", flush=True)
    if leave:
        client.disconnect()
        client.loop_stop()
        return 0
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
