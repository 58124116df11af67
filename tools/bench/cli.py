#!/usr/bin/env python3
"""The ``linkserver`` CLI as a whole process, next to a 10-line httpx script doing the same.

Both sides are new Python processes of the same interpreter, started one
after the other (alternating, so load on the machine hits both alike) and
timed from spawn to exit, against one server in a subprocess (SQLite
history). Both authenticate the same way: with an API token (``--token`` on
the CLI, an ``Authorization: Bearer`` header in the script), so no password
login (scrypt) is in either.

- ``fire``: ``linkserver fire devices.bench measurement quantity=t value=1.5
  unit=degC --token T``. The script POSTs the same event to ``/api/v1/fire``
  and prints the id. The CLI types ``key=value`` by the event's definition,
  which it must know: that costs it a ``GET /contexts/{path}`` the script,
  which knows its data's types, does not make (so the CLI does more here).
- ``history``: ``linkserver history --limit 5 --token T`` against the script's
  ``GET /api/v1/history?limit=5``, each printing the five events
  (over 10,000 stored).

What each side loads besides: the CLI parses its command line (argparse, only
the options of the command run), decodes the answer into ``Event`` objects and
prints a table; it imports neither httpx's own command line (``import httpx``
imports ``httpx._main``, which loads click and rich wherever they are
installed, as here: ~40 ms the script pays) nor, for an http:// server, the
CA bundle (a TLS context it would never use: ~20 ms the script's
``httpx.Client()`` pays). Both send the same requests over one kept-alive
connection.

Goals: ``cli_fire_vs_httpx`` and ``cli_history_vs_httpx``, the median
whole-process time of the CLI over the script's, <= 1.30x.

    python tools/bench/cli.py [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from net import CONTEXT, start_server, stop_server  # noqa: E402

TARGET = 1.30
SCRIPT = """
import sys, httpx
url, token, what, path = sys.argv[1:5]
with httpx.Client(base_url=url + "/api/v1", headers={"Authorization": "Bearer " + token}) as client:
    if what == "fire":
        record = {"quantity": "t", "value": 1.5, "unit": "degC"}
        body = {"context": path, "event": "measurement", "data": [record]}
        print("fired", client.post("/fire", json=body).raise_for_status().json()["event"]["id"])
    else:
        for e in client.get("/history", params={"limit": 5}).raise_for_status().json()["events"]:
            print(e["id"], e["created"], e["level"], e["context"], e["name"], e["data"])
"""


def cli_command() -> list[str]:
    """The installed console script when there is one (what users run), else ``-m linkserver``."""
    script = Path(sys.executable).with_name("linkserver")
    return [str(script)] if script.exists() else [sys.executable, "-m", "linkserver"]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd="/", capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])}... failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def create_token(config: Path) -> str:
    done = subprocess.run(
        [*cli_command(), "token", "create-token", "bench", "--grant", "**=admin", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.strip()


def seed(url: str, token: str, count: int) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url + "/api/v1", headers=headers, timeout=60) as client:
        client.post("/contexts", json={"path": CONTEXT}).raise_for_status()
        record = {"quantity": "t", "value": 1.0, "unit": "degC"}
        batch = [{"context": CONTEXT, "event": "measurement", "data": [record]}] * 1000
        for _ in range(count // 1000):
            client.post("/fire/batch", json={"events": batch, "durable": True}).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few processes each")
    parser.add_argument("--runs", type=int, help="processes per side and command (default 40; quick 1)")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 40)
    with tempfile.TemporaryDirectory(prefix="linkserver-bench-cli-") as directory:
        tmp = Path(directory)
        process, url, _credentials = start_server(tmp)
        try:
            token = create_token(tmp / "config" / "linkserver.yaml")
            seed(url, token, 1000 if args.quick else 10_000)
            script = tmp / "bare_httpx.py"
            script.write_text(SCRIPT)
            # No credentials file or config nearby: the CLI gets what the script gets.
            env = {k: v for k, v in os.environ.items() if not k.startswith("LINKSERVER_")}
            env["HOME"] = str(tmp / "home")
            commands = {
                "fire": (
                    [*cli_command(), "fire", CONTEXT, "measurement", "quantity=t", "value=1.5", "unit=degC"],
                    [sys.executable, str(script), url, token, "fire", CONTEXT],
                ),
                "history": (
                    [*cli_command(), "history", "--limit", "5"],
                    [sys.executable, str(script), url, token, "history", CONTEXT],
                ),
            }
            results = {}
            for name, (cli, bare) in commands.items():
                cli = [*cli, "--url", url, "--token", token]
                for warm in (cli, bare):  # the page cache, the server's caches
                    timed(warm, env)
                ours, theirs = [], []
                for _ in range(runs):
                    ours.append(timed(cli, env))
                    theirs.append(timed(bare, env))
                results[name] = (statistics.median(ours), statistics.median(theirs))
                print(
                    f"{name}: linkserver CLI median {results[name][0] * 1000:.0f} ms "
                    f"(min {min(ours) * 1000:.0f}), httpx script median {results[name][1] * 1000:.0f} ms "
                    f"(min {min(theirs) * 1000:.0f}), {runs} processes each"
                )
        finally:
            stop_server(process)
            shutil.rmtree(tmp / "home", ignore_errors=True)
    for name, (ours, theirs) in results.items():
        ratio = ours / theirs
        verdict = "ok" if ratio <= TARGET else "short"
        print(f"goal cli_{name}_vs_httpx: {ratio:.2f}x (target <= {TARGET:.2f}x) {verdict}")
    print(json.dumps({name: {"cli_s": o, "httpx_s": t} for name, (o, t) in results.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
