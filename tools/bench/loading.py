#!/usr/bin/env python3
"""Loading a large definition set: ``linkserver check`` vs libyaml, and memory per definition.

The data is generated in a temporary directory with the shape of a real
industrial set (18,096 definitions in 364 files): 362 files of 50 events
each, every event with a description, a help text, a level, permissions, a
group and an inline format of 5 string fields (descriptions, some allowed
values, defaults, nullable flags); half the events persistent with an
expiration. Each file defines a template and a context naming it plus a
shared ``standard`` template; field names come from a vocabulary, as in
real sets, and descriptions repeat in part (per field name and file).

Goals, each side as a separate process started the same way (CPU time of
the child, user + system, interpreter start included on both sides):

- ``check``: ``linkserver check DIR`` (compose every file, read every
  definition and build it, cross-file checks, print the result) vs a
  script that reads the same files and composes each with libyaml
  (``yaml.compose(text, Loader=yaml.CSafeLoader)``): node trees with marks,
  nothing built from them. Target: <= 3x.
- ``memory_per_definition``: resident memory (VmRSS after a collection) of
  a process that loads the set and builds the server object as ``linkserver
  serve`` does (``load_all`` + ``LinkServer(config, catalog)``: engine,
  context tree, memory history), minus the same process loading a set of
  one empty file, divided by the number of definitions. Target: <= 4 kB.

    python tools/bench/loading.py [--quick] [--files N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

EVENTS_PER_FILE = 50
FIELDS_PER_EVENT = 5
WORDS = [
    "pump",
    "valve",
    "motor",
    "sensor",
    "line",
    "tank",
    "feeder",
    "belt",
    "press",
    "oven",
    "boiler",
    "chiller",
    "fan",
    "compressor",
    "heater",
    "mixer",
    "conveyor",
    "filter",
    "dryer",
    "cooler",
    "reactor",
    "drive",
    "spindle",
    "robot",
    "gripper",
]
FIELD_NAMES = [
    "message",
    "code",
    "unit",
    "quantity",
    "source",
    "operator",
    "reason",
    "state",
    "mode",
    "phase",
    "batch",
    "recipe",
    "station",
    "shift",
    "channel",
    "serial",
    "firmware",
    "address",
    "port",
    "vendor",
]
LEVELS = ("INFO", "NOTICE", "WARNING", "ERROR")


def generate(directory: Path, files: int, seed: int = 7) -> int:
    """Write ``files`` context files plus a config; return the number of definitions."""
    rng = random.Random(seed)
    contexts = directory / "contexts"
    contexts.mkdir(parents=True)
    standard = textwrap.dedent(
        """\
        templates:
          standard:
            description: Events every plant context has.
            events:
              noted:
                description: An operator noted something.
                level: INFO
                persistent: true
                format:
                  fields:
                    - name: text
                      type: string
                      description: What was noted.
        """
    )
    (contexts / "000_standard.yaml").write_text(standard)
    count = 1
    for index in range(1, files + 1):
        word = WORDS[index % len(WORDS)]
        lines = [f"# plant area {index}: {word} events", "templates:", f"  area{index}:"]
        lines += [f"    description: Events of the {word}s of area {index}.", "    include: [standard]"]
        lines.append("    events:")
        for number in range(EVENTS_PER_FILE):
            persistent = number % 2 == 0
            lines += [
                f"      {word}{number}State{index}:",
                f"        description: The {word} {number} of area {index} reported a change.",
                "        help: >-",
                f"          Fired by the controller of {word} {number} when its state changes;",
                f"          check the {word} on site if the level is {LEVELS[number % 4]} or above.",
                f"        level: {LEVELS[number % 4]}",
                f"        persistent: {'true' if persistent else 'false'}",
            ]
            if persistent:
                lines.append(f"        expiration: {rng.choice(('7d', '30d', '90d'))}")
            lines += [
                "        permissions: observer",
                "        fire_permissions: operator",
                f"        group: {word}",
                "        format:",
                "          fields:",
            ]
            for name in rng.sample(FIELD_NAMES, FIELDS_PER_EVENT):
                lines += [f"            - name: {name}", "              type: string"]
                lines.append(f"              description: The {name} of the {word} ({index % 7}).")
                choice = rng.random()
                if choice < 0.15:
                    lines.append("              allowed: [low, medium, high]")
                    lines.append("              default: low")
                elif choice < 0.35:
                    lines.append("              nullable: true")
                elif choice < 0.45:
                    lines.append("              max: 200")
            count += 1
        lines += [
            "contexts:",
            f"  area{index}:",
            f"    description: Plant area {index}.",
            f"    templates: [area{index}]",
        ]
        (contexts / f"area{index:03}.yaml").write_text("\n".join(lines) + "\n")
    write_config(directory, contexts)
    return count


def write_config(directory: Path, contexts: Path) -> Path:
    config = directory / "linkserver.yaml"
    config.write_text(
        f"server:\n  data_dir: {json.dumps(str(directory / 'data'))}\n"
        f"  contexts: [{json.dumps(str(contexts))}]\nhistory:\n  database_url: memory://\n"
    )
    return config


COMPOSE = """
import sys
from pathlib import Path
import yaml
for path in sorted(Path(sys.argv[1]).glob("*.yaml")):
    yaml.compose(path.read_bytes().decode("utf-8-sig"), Loader=yaml.CSafeLoader)
"""

LOAD = """
import gc, sys
from pathlib import Path
from linkserver.loading import load_all
from linkserver.server.app import LinkServer
config, catalog = load_all(Path(sys.argv[1]))
server = LinkServer(config, catalog)  # the engine and its tree, as 'linkserver serve' builds them
del catalog
gc.collect()
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(rss * 1024)
"""


def child_cpu(command: list[str]) -> tuple[float, str]:
    """CPU seconds (user + system) of a child process and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, result.stdout


def linkserver_command() -> list[str]:
    return [sys.executable, "-m", "linkserver", "check"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run on a small set")
    parser.add_argument("--files", type=int, default=None, help="context files (default 362, quick 4)")
    parser.add_argument("--rounds", type=int, default=None, help="best of N (default 3, quick 1)")
    args = parser.parse_args()
    files = args.files or (4 if args.quick else 362)
    rounds = args.rounds or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="linkserver-bench-loading-") as tmp:
        base = Path(tmp)
        definitions = generate(base / "set", files)
        contexts = base / "set" / "contexts"
        size = sum(p.stat().st_size for p in contexts.iterdir())
        print(f"{definitions:,} definitions in {files + 1} files ({size / 1e6:.1f} MB of YAML)")

        ours = min(child_cpu([*linkserver_command(), str(contexts)])[0] for _ in range(rounds))
        theirs = min(child_cpu([sys.executable, "-c", COMPOSE, str(contexts)])[0] for _ in range(rounds))
        print(f"linkserver check: {ours:.2f} s CPU   libyaml compose: {theirs:.2f} s CPU")

        empty = base / "empty" / "contexts"
        empty.mkdir(parents=True)
        (empty / "empty.yaml").write_text("contexts: {}\n")
        empty_config = write_config(base / "empty", empty)
        full_config = base / "set" / "linkserver.yaml"
        loaded = min(int(child_cpu([sys.executable, "-c", LOAD, str(full_config)])[1]) for _ in range(rounds))
        bare = min(int(child_cpu([sys.executable, "-c", LOAD, str(empty_config)])[1]) for _ in range(rounds))
        per_definition = (loaded - bare) / definitions
        print(
            f"resident: {loaded / 2**20:.1f} MiB loaded, {bare / 2**20:.1f} MiB empty: "
            f"{per_definition / 1000:.2f} kB per definition"
        )
    goals = [
        ("check_vs_libyaml_compose", ours / theirs, 3.0, "x"),
        ("memory_per_definition", per_definition / 1000, 4.0, " kB"),
    ]
    for name, value, target, unit in goals:
        verdict = "ok" if value <= target else "short"
        print(f"goal {name}: {value:.2f}{unit} (target <= {target:.2f}{unit}) {verdict}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
