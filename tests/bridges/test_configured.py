"""Bridges from the configuration file: started with the server, checked by `linkserver check`."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

from bridges.test_contract import wait_until
from linkserver.bridges.memory import MemoryBroker
from linkserver.cli import main
from linkserver.server.app import LinkServer
from linkserver.server.metrics import exposition, registry

SHIPPED_CONTEXTS = Path(__file__).resolve().parents[2] / "contexts"


def write_config(tmp_path: Path, bridges: str) -> Path:
    path = tmp_path / "linkserver.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            server:
              data_dir: {tmp_path / "data"}
              contexts: [{SHIPPED_CONTEXTS}]
            users:
              admin: {{grants: {{"**": admin}}}}
              ingest: {{grants: {{"devices.**": operator}}}}
            """
        )
        + textwrap.dedent(bridges)
    )
    return path


def test_a_configured_bridge_starts_with_the_server_and_carries_events_both_ways(tmp_path: Path) -> None:
    name = f"cfg-{uuid.uuid4().hex[:8]}"
    path = write_config(
        tmp_path,
        f"""
        bridges:
          - name: out
            type: memory
            broker: {name.replace("-", "_")}
            routing: cloudstack
            source: node7
            select: [{{mask: "devices.*", event: measurement}}]
            inbound: {{queue: posted, principal: ingest}}
        """,
    )
    broker = MemoryBroker.named(name.replace("-", "_"))
    with LinkServer.from_config_file(path) as server:
        server.engine.add_context("devices.p1")
        event = server.fire("devices.p1", "measurement", [{"quantity": "t", "value": 1.0}])
        (message,) = broker.wait_for(1)
        assert message.key == "node7.UsageEvent.measurement.devices.p1"
        assert message.message_id == str(event.id)
        broker.post(
            json.dumps(
                {"context": "devices.p1", "event": "error", "data": {"code": "E", "message": "m"}}
            ).encode()
        )
        broker.post(b"not json")
        broker.wait_settled(2)
        assert len(broker.acked) == 1 and len(broker.dead_letters) == 1
        (host,) = server.bridges
        wait_until(lambda: host.outbound.depth == 0, "the confirmed row deleted")
        text = exposition(registry(server)).decode()
    assert 'linkserver_bridge_published_total{bridge="out"} 1.0' in text
    assert 'linkserver_bridge_received_total{bridge="out"} 1.0' in text
    assert 'linkserver_bridge_refused_total{bridge="out",reason="invalid_json"} 1.0' in text
    assert 'linkserver_bridge_outbox_depth{bridge="out"} 0.0' in text


def test_check_reports_a_bad_bridges_section_with_file_and_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = write_config(
        tmp_path,
        """
        bridges:
          - name: out
            type: amqp
            exchange_type: topik
        """,
    )
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:12:" in out and "topik" in out, out
