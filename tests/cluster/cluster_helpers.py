"""Nodes of a cluster as real ``linkserver serve`` processes, and what the tests do with them."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from node_processes import REPO, ServeProcess

from linkserver.net.auth import hash_password

CONTEXTS = [REPO / "contexts", Path(__file__).resolve().parent / "contexts"]
OPERATOR = "op"
PASSWORD = "op-pw"
_HASH = hash_password(PASSWORD, n=2**10)


class Node(ServeProcess):
    """One ``linkserver serve`` process of the cluster on ``exchange``; :meth:`start` it
    (tests/node_processes.py runs the process)."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        database_url: str,
        amqp_url: str,
        exchange: str,
        lease: str = "2s",
        queue_expires: str = "120s",
        buffer: int | None = None,
        recorder: bool = False,
    ) -> None:
        super().__init__(directory / name)
        # With ``recorder``: a durable and a non-durable subscription of the node itself to
        # plant.** readings write what they get to :attr:`recorded` (tests/cluster/durable_recorder.py)
        self.recorder = recorder
        self.recorded = self.directory / "recorded.txt"
        self.name = name
        self.database_url = database_url
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.lease = lease
        self.queue_expires = queue_expires
        self.buffer = buffer
        self.token = ""

    def config_text(self) -> str:
        lines = [
            "server:",
            f"  data_dir: {json.dumps(str(self.directory / 'data'))}",
            f"  contexts: {json.dumps([str(path) for path in CONTEXTS])}",
            f"  listen: 127.0.0.1:{self.port}",
            "history:",
            f"  database_url: {json.dumps(self.database_url)}",
            "users:",
            f"  {OPERATOR}:",
            f"    password_hash: {json.dumps(_HASH)}",
            '    grants: {"**": "admin"}',
            "cluster:",
            f"  url: {json.dumps(self.amqp_url)}",
            f"  exchange: {json.dumps(self.exchange)}",
            f"  node_name: {self.name}",
            f"  lease: {self.lease}",
            f"  queue_expires: {self.queue_expires}",
        ]
        if self.buffer is not None:
            lines.append(f"  buffer: {self.buffer}")
        if self.recorder:
            lines += [
                "controllers:",
                "  - name: recorder",
                "    class: tests.cluster.durable_recorder:DurableRecorder",
                f"    options: {{path: {json.dumps(str(self.recorded))}}}",
            ]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 90) -> Node:
        """Start the process and wait until it serves."""
        return self.launch().wait_serving(timeout)

    def wait_serving(self, timeout: float = 90) -> Node:
        """Wait until the node logs the operator in (its token in :attr:`token`)."""

        def logged_in() -> bool:
            answer = httpx.post(f"{self.api}/login", json={"user": OPERATOR, "password": PASSWORD}, timeout=2)
            if answer.status_code != 200:
                return False
            self.token = answer.json()["token"]
            return True

        self.wait_until(logged_in, timeout, f"node {self.name}")
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def fire(self, context: str, event: str, data: Any = None, *, durable: bool = True) -> int:
        answer = httpx.post(
            f"{self.url}/api/v1/fire",
            json={"context": context, "event": event, "data": data or {}, "durable": durable},
            headers=self.headers,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return int(answer.json()["event"]["id"])

    def fire_batch(self, items: list[dict[str, Any]], *, durable: bool = True) -> list[int]:
        answer = httpx.post(
            f"{self.url}/api/v1/fire/batch",
            json={"events": items, "durable": durable},
            headers=self.headers,
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert all(result.get("event") for result in results), results
        return [int(result["event"]["id"]) for result in results]

    def add_context(self, path: str) -> None:
        answer = httpx.post(
            f"{self.url}/api/v1/contexts", json={"path": path}, headers=self.headers, timeout=30
        )
        assert answer.status_code == 201, answer.text

    def history_ids(self, mask: str, event: str) -> list[int]:
        answer = httpx.get(
            f"{self.url}/api/v1/history",
            params={"mask": mask, "event": event, "order": "oldest", "limit": 10000},
            headers=self.headers,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return [int(e["id"]) for e in answer.json()["events"]]

    def metric(self, name: str) -> float:
        """The value of one unlabelled metric on ``/metrics`` (``linkserver_`` and the name)."""
        text = httpx.get(f"{self.url}/metrics", headers=self.headers, timeout=10).text
        found = re.search(rf"^linkserver_{name} (\S+)$", text, re.MULTILINE)
        assert found is not None, f"no metric linkserver_{name} on {self.name}"
        return float(found.group(1))

    def subscribe(self, mask: str = "plant.**", event: str = "*", **options: Any) -> Subscriber:
        return Subscriber(self, mask, event, **options)


class Subscriber:
    """A WebSocket subscription on one node; events collected by a thread as they come."""

    def __init__(self, node: Node, mask: str, event: str, **options: Any) -> None:
        from websockets.sync.client import connect

        self.node = node
        self.ws = connect(f"ws://127.0.0.1:{node.port}/api/v1/ws?token={node.token}", open_timeout=5)
        self.ws.send(json.dumps({"type": "subscribe", "ref": 1, "mask": mask, "event": event, **options}))
        answer = json.loads(self.ws.recv(timeout=10))
        assert answer["type"] == "subscribed", answer
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.recv())
                found = [message["event"]] if message["type"] == "event" else []
                if message["type"] == "events":
                    found = [m.get("event", m) for m in message["events"]]
                with self._lock:
                    self.events.extend(found)
        except Exception:  # closed: by the test or by the node going
            self.closed = True

    def ids(self, event: str | None = None) -> list[int]:
        with self._lock:
            return [int(e["id"]) for e in self.events if event is None or e["name"] == event]

    def wait_for(
        self, predicate: Callable[[list[int]], bool], timeout: float = 30, event: str | None = None
    ) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = self.ids(event)
            if predicate(ids):
                return ids
            time.sleep(0.05)
        return self.ids(event)

    def close(self) -> None:
        self.ws.close()


def wait_linked(firer: Node, receiver: Node, timeout: float = 30) -> None:
    """Fire ticks on ``firer`` until ``receiver``'s subscriber gets one: both ends are bound."""
    sub = receiver.subscribe("plant.line3", "tick")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            firer.fire("plant.line3", "tick", {"seq": -1}, durable=False)
            if sub.wait_for(bool, timeout=0.5):
                return
        raise AssertionError(f"{receiver.name} gets nothing fired on {firer.name}:\n{receiver.log()}")
    finally:
        sub.close()


QUEUE_LINE = re.compile(r"receiving the other nodes' events on queue '([^']+)'")


def queues_in(log: str) -> list[str]:
    """The queues a node's log says it declared."""
    return QUEUE_LINE.findall(log)


def delete_broker_objects(url: str, exchange: str, queues: Iterable[str] = ()) -> None:
    """Remove a test's exchange and queues from the shared RabbitMQ."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in queues:
            channel.queue_delete(name)
        channel.exchange_delete(exchange)
    finally:
        connection.close()


class Firer:
    """Fires readings on ``node`` one by one in a thread; ``confirmed`` holds the ids the
    node said it stored (a 200 to a durable fire); a refused fire (503) is not confirmed."""

    def __init__(self, node: Node, context: str = "plant.line1", pause: float = 0.01) -> None:
        self.node, self.context, self.pause = node, context, pause
        self.confirmed: list[int] = []
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        with httpx.Client(base_url=f"{self.node.url}/api/v1", headers=self.node.headers, timeout=30) as http:
            while not self._stop.is_set():
                seq += 1
                try:
                    answer = http.post(
                        "/fire",
                        json={
                            "context": self.context,
                            "event": "reading",
                            "data": {"seq": seq},
                            "durable": True,
                        },
                    )
                except httpx.TransportError:  # the node is gone
                    return
                if answer.status_code == 200:
                    self.confirmed.append(int(answer.json()["event"]["id"]))
                else:
                    self.refused += 1
                time.sleep(self.pause)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.confirmed) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(60)
        return list(self.confirmed)


def start(*nodes: Node) -> None:
    for node in nodes:
        node.launch()
    for node in nodes:
        node.wait_serving()
    for firer in nodes:
        for receiver in nodes:
            if receiver is not firer:
                wait_linked(firer, receiver)
