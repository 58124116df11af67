"""Helpers of the several-nodes tests: ``linkserver serve`` processes sharing one PostgreSQL schema
(the process itself is tests/node_processes.py's, shared with tests/cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from node_processes import REPO, ServeProcess, eventually

from linkserver.net.auth import hash_password

__all__ = ["CONTEXTS", "REPO", "USERS", "Node", "eventually"]

CONTEXTS = REPO / "contexts"

# Every node has the same users and the same hashes (a cluster shares its configuration).
USERS: dict[str, dict[str, str]] = {"admin": {"**": "admin"}, "operator": {"**": "operator"}}
_HASHES = {name: hash_password(f"{name}-pw", n=2**10) for name in USERS}


class Node(ServeProcess):
    """One ``linkserver serve`` process on loopback with node id ``node_id``, started at once."""

    def __init__(self, directory: Path, database_url: str, node_id: int, extra: str = "") -> None:
        super().__init__(directory)
        self.database_url, self.node_id, self.extra = database_url, node_id, extra
        self.launch()

    def config_text(self) -> str:
        lines = [
            "server:",
            f"  data_dir: {json.dumps(str(self.directory / 'data'))}",
            f"  contexts: [{json.dumps(str(CONTEXTS))}]",
            f"  listen: {json.dumps(f'127.0.0.1:{self.port}')}",
            f"  node_id: {self.node_id}",
            "history:",
            f"  database_url: {json.dumps(self.database_url)}",
            "users:",
        ]
        for name, grants in USERS.items():
            lines += [
                f"  {name}:",
                f"    password_hash: {json.dumps(_HASHES[name])}",
                f"    grants: {json.dumps(grants)}",
            ]
        return "\n".join(lines) + "\n" + self.extra

    def wait_serving(self, timeout: float = 90) -> Node:
        def serving() -> bool:
            return httpx.get(f"{self.url}/openapi.json", timeout=1).status_code == 200

        self.wait_until(serving, timeout, f"node {self.node_id}")
        return self

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.api, headers=headers, timeout=10)

    def login(self, user: str = "admin") -> str:
        with self.http() as http:
            answer = http.post("/login", json={"user": user, "password": f"{user}-pw"})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])
