"""The sync and async clients' HTTP calls have one source, and every call is a declared operation."""

from __future__ import annotations

import asyncio
import inspect
import re
import subprocess
import sys
from typing import Any

import pytest
from client_helpers import ROOT

from linkserver.client.calls_async import AsyncCalls
from linkserver.client.calls_sync import Calls
from linkserver.wire.routes import OPERATIONS

ARGUMENTS: dict[str, tuple[Any, ...]] = {
    "context": ("devices.plc7",),
    "add_context": ("devices.plc7",),
    "remove_context": ("devices.plc7",),
    "fire": ("devices.plc7", "connected"),
    "fire_batch": ([("devices.plc7", "connected")],),
    "event": (12,),
    "acknowledge": (12, "done"),
    "delete": (12,),
    "user": ("alice",),
    "add_user": ("alice",),
    "set_password": ("alice", "a long secret"),
    "grant": ("alice", {"devices.**": "operator"}),
    "revoke": ("alice", ["devices.**"]),
    "remove_user": ("alice",),
    "create_api_token": ("plant", {"devices.**": "admin"}),
    "revoke_api_token": ("plant",),
    "resource": ("vms.vm1",),
    "transition": ("vms.vm1", "start"),
    "job_status": ("j1",),
    "schedule_job": ("VM.START", "vms.vm1"),
    "job_step": ("j1", "progress"),
    "job": ("VM.START", "vms.vm1"),
    "rule": ("burst",),
    "test_rule": ("burst", "7d"),
    "alarm": (12,),
    "alarm_events": (12,),
    "iter_alarm_events": (12,),
    "acknowledge_alarm": (12, "on it"),
    "unacknowledge_alarm": (12,),
    "clear_alarm": (12,),
}
ANSWER = {
    "event": {"id": 12, "context": "devices.plc7", "name": "connected", "level": "INFO",
              "created": "2026-01-01T00:00:00+00:00", "data": [{}]},
    "results": [], "events": [], "next_cursor": None, "path": "x", "removed": [], "users": [], "user": {},
    "resources": [], "resource": {}, "jobs": [], "job": {"id": "j1"},
    "rules": [], "rule": {}, "alarms": [], "alarm": {}, "tokens": [], "token": "plant.secret",
}  # fmt: skip


def _calls(cls: type) -> list[str]:
    return [name for name, _ in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")]


def test_the_sync_calls_are_generated_from_the_async_ones() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "unasync.py"), "--check"], capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    assert _calls(Calls) == _calls(AsyncCalls)


class _Recording(Calls):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        self.sent.append((method, path))
        return {**ANSWER, "removed": 0} if path == "/purge" else ANSWER


class _AsyncRecording(AsyncCalls):
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        self.sent.append((method, path))
        return {**ANSWER, "removed": 0} if path == "/purge" else ANSWER


def _operation_of(method: str, path: str) -> str | None:
    for op in OPERATIONS:
        pattern = re.sub(r"\{\w+\}", r"[^/]+", op.path)
        if op.method == method and re.fullmatch(pattern, path.split("?")[0]):
            return op.name
    return None


@pytest.mark.parametrize("name", _calls(Calls))
def test_every_call_is_an_operation_of_the_document(name: str) -> None:
    sync, aio = _Recording(), _AsyncRecording()
    result = getattr(sync, name)(*ARGUMENTS.get(name, ()))
    if inspect.isgenerator(result):
        list(result)
    elif hasattr(result, "__enter__"):  # client.job(...): a with block
        with result:
            pass
    outcome = getattr(aio, name)(*ARGUMENTS.get(name, ()))

    async def drain() -> None:
        if hasattr(outcome, "__aenter__"):
            async with outcome:
                pass
        elif inspect.isasyncgen(outcome):
            async for _ in outcome:
                pass
        else:
            await outcome

    asyncio.run(drain())
    assert sync.sent and sync.sent == aio.sent
    for method, path in sync.sent:
        assert _operation_of(method, path) is not None, (name, method, path)
