"""``linkserver states``, ``linkserver transition`` and ``linkserver jobs`` (docs/resources.md).

``states`` lists resources (contexts with a state machine) with their state and
the transitions allowed from it; ``transition`` requests one (operator on the
resource); ``jobs`` lists current and recent jobs.
"""

from __future__ import annotations

import argparse
from typing import Any

from linkserver.client.cli import OK, _client, _guarded, _print_json, format_table


def add_resource_commands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    states = subparsers.add_parser(
        "states", parents=[common], help="resources and their states (contexts with a state machine)"
    )
    states.add_argument("mask", nargs="?", default="**", help="context mask (default: every resource)")
    states.set_defaults(handler=_guarded(_states))

    transition = subparsers.add_parser(
        "transition", parents=[common], help="change a resource's state through its state machine"
    )
    transition.add_argument("path", help="the resource's context path, e.g. vms.vm1")
    transition.add_argument("action", nargs="?", help="the action, e.g. start (or give --to)")
    transition.add_argument(
        "--to", metavar="STATE", help="the state to go to (by the action that leads there)"
    )
    transition.add_argument("--cause", help="why, for the stateChanged event (default: the action)")
    transition.set_defaults(handler=_guarded(_transition))

    jobs = subparsers.add_parser("jobs", parents=[common], help="current and recent jobs")
    jobs.add_argument("--status", choices=["scheduled", "started", "completed", "failed"])
    jobs.add_argument("--resource", help="only jobs working on this context path")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.set_defaults(handler=_guarded(_jobs))


def _states(args: argparse.Namespace) -> int:
    with _client(args) as client:
        found = client.resources(args.mask)
    if args.json:
        _print_json(found)
        return OK
    rows = [(r["path"], r["machine"], r["state"], "; ".join(r["allowed"]) or "(final)") for r in found]
    print(format_table(("resource", "machine", "state", "allowed"), rows))
    return OK


def _transition(args: argparse.Namespace) -> int:
    with _client(args) as client:
        answer = client.transition(args.path, args.action, to=args.to, cause=args.cause)
    event = answer["event"]
    if args.json:
        _print_json({"resource": answer["resource"], "event": event.marshal()})
        return OK
    record = event.record
    print(f"{answer['resource']['path']}: {record.get('old')} -> {record.get('new')} (event {event.id})")
    return OK


def job_rows(jobs: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows = []
    for job in jobs:
        duration = job.get("duration")
        status = job["status"] + (" (hanging)" if job.get("hanging") else "")
        rows.append(
            (
                job["id"],
                job["type"],
                job["resource"],
                status,
                str(job.get("started") or job.get("scheduled") or "-")[:19],
                f"{duration:.1f}s" if isinstance(duration, (int, float)) else "-",
                str(job.get("result") or job.get("message") or ""),
            )
        )
    return rows


def _jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        found = client.jobs(status=args.status, resource=args.resource, limit=args.limit)
    if args.json:
        _print_json(found)
        return OK
    print(format_table(("job", "type", "resource", "status", "since", "duration", "result"), job_rows(found)))
    return OK
