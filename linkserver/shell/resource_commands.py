"""The shell's ``state`` and ``jobs`` commands (docs/resources.md); registered by importing."""

from __future__ import annotations

import argparse

from linkserver.shell import render
from linkserver.shell.session import Arg, Shell, ShellError, command, resolve


@command(
    "state",
    "state [PATH] [ACTION] [--to STATE] [--cause TEXT]",
    "a resource's state and allowed transitions; with ACTION (or --to), change it",
    Arg("path", "path", "the resource (default: the current context)", "?"),
    Arg("action", "text", "the action to request, e.g. start", "?"),
    Arg("--to", "text", "the state to go to instead of naming the action"),
    Arg("--cause", "text", "why (recorded in the stateChanged event)"),
    example="state /vms.vm1\nstate /vms.vm1 start\nstate sim1 --to maintenance",
)
def _state(shell: Shell, a: argparse.Namespace) -> None:
    path = resolve(shell.cwd, a.path) if a.path else shell.cwd
    if a.action or a.to:
        if a.action and a.to:
            raise ShellError("state: give an ACTION or --to STATE, not both")
        answer = shell.client.transition(path, a.action, to=a.to, cause=a.cause)
        record = answer["event"].record
        shell.write(f"{render.context_text(path)}: {record.get('old')} -> {record.get('new')}")
        resource = answer["resource"]
    else:
        resource = shell.client.resource(path)
    allowed = "; ".join(resource.get("allowed") or ()) or "none (a final state)"
    shell.write(f"{render.context_text(path)} ({resource.get('machine')}): {resource.get('state')}")
    shell.write(f"  allowed: {allowed}")


@command(
    "jobs",
    "jobs [--status STATUS] [--resource PATH]",
    "current and recent jobs: status, times, duration, result",
    Arg("--status", "text", "scheduled, started, completed or failed"),
    Arg("--resource", "path", "only the jobs of this resource"),
)
def _jobs(shell: Shell, a: argparse.Namespace) -> None:
    resource = resolve(shell.cwd, a.resource) if a.resource else None
    jobs = shell.client.jobs(status=a.status, resource=resource, limit=100)
    rows = []
    for job in jobs:
        duration = job.get("duration")
        status = str(job["status"]) + (" (hanging)" if job.get("hanging") else "")
        rows.append(
            [
                str(job["id"])[:12],
                str(job["type"]),
                render.context_text(str(job["resource"])),
                status,
                f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-",
                str(job.get("result") or job.get("hanging") or job.get("message") or ""),
            ]
        )
    headers = ["JOB", "TYPE", "RESOURCE", "STATUS", "DURATION", "RESULT"]
    shell.write(render.table(headers, rows, colour=shell.colour, width=shell.console.width))
    shell.write(f"{len(rows)} job(s)")
