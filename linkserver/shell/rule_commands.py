"""The shell's ``rules`` command (docs/rules.md); registered by importing.

``rules`` lists the alert rules with what each holds now; ``rules NAME`` shows
one in detail (open alerts, escalations); ``rules NAME --test 7d`` is the dry
run: what the rule would have fired over that much stored history.
"""

from __future__ import annotations

import argparse
from typing import Any

from linkserver.client.rule_commands import firing_rows, summary
from linkserver.shell import render
from linkserver.shell.session import Arg, Shell, command


@command(
    "rules",
    "rules [NAME] [--test DURATION]",
    "alert rules and their state; with --test, what NAME would have fired over stored history",
    Arg("name", "text", "one rule (default: every rule)", "?"),
    Arg("--test", "text", "dry run over this much history, e.g. 7d (fires nothing)"),
    example="rules\nrules error_burst\nrules error_burst --test 7d",
)
def _rules(shell: Shell, a: argparse.Namespace) -> None:
    if a.test:
        if not a.name:
            shell.write("rules --test: name the rule to test, e.g. rules error_burst --test 7d")
            return
        result = shell.client.test_rule(a.name, since=a.test)
        fired = result["fired"]
        shell.write(
            f"rule {result['rule']}: {result['events']} stored events since {result['since'][:19]}; "
            f"it would have fired {len(fired)} (nothing was fired):"
        )
        headers = ["WHEN", "EVENT", "KEY", "MESSAGE"]
        shell.write(render.table(headers, firing_rows(fired), colour=shell.colour, width=shell.console.width))
        return
    if a.name:
        _one(shell, shell.client.rule(a.name))
        return
    rows = [
        [
            r["name"],
            r["kind"] + ("" if r["enabled"] else " (disabled)"),
            r["alert"],
            str(r["fired"]),
            summary(r["state"]),
            r["description"],
        ]
        for r in shell.client.rules()
    ]
    headers = ["RULE", "KIND", "FIRES IN", "FIRED", "NOW", "WATCHES"]
    shell.write(render.table(headers, rows, colour=shell.colour, width=shell.console.width))
    shell.write(f"{len(rows)} rule(s)")


def _one(shell: Shell, rule: dict[str, Any]) -> None:
    state = rule["state"]
    enabled = "" if rule["enabled"] else " (disabled: checked and testable, not evaluated)"
    shell.write(f"{rule['name']} ({rule['kind']}){enabled}: {rule['description']}")
    shell.write(f"  fires in {rule['alert']}; fired {rule['fired']} since the server started")
    for key, row in sorted((state.get("open") or {}).items()):
        shell.write(f"  open  {key}  since {str(row.get('since'))[:19]}  alert {row.get('alert_id')}")
    for key, count in sorted((state.get("counting") or {}).items()):
        shell.write(f"  counting  {key}: {count} in the window")
    if state.get("watching"):
        keys = "key" if state["watching"] == 1 else "keys"
        shell.write(f"  watching {state['watching']} {keys} for silence")
    for key, row in sorted((state.get("escalating") or {}).items()):
        shell.write(
            f"  escalating event {key} ({row.get('event')} in {row.get('context')}): "
            f"{row.get('step')} step(s) fired, next at {str(row.get('next'))[:19]}"
        )
