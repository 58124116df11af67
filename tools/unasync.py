"""Write linkserver/client/calls_sync.py from calls_async.py (as httpcore's unasync does).

    python tools/unasync.py          rewrite the sync module
    python tools/unasync.py --check  exit 1 if it is not what the async module gives

The request methods of the HTTP API are written once, for asyncio, in
``linkserver/client/calls_async.py``; the blocking ones are that text with
``async``/``await`` taken out, so the two clients cannot drift.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "linkserver" / "client" / "calls_async.py"
TARGET = ROOT / "linkserver" / "client" / "calls_sync.py"

# Whole words only, applied in order.
SUBSTITUTIONS = (
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncCalls\b", "Calls"),
    (r"\bAsyncJob\b", "Job"),
    (r"\basynccontextmanager\b", "contextmanager"),
)
HEADER = (
    "# Generated from calls_async.py by tools/unasync.py: edit that file, then run the tool.\n"
    "# ruff: noqa: UP028, I001 (the async text as it is: no yield from, imports in its order)\n"
)


def generate(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text)
    return HEADER + text


def main(argv: list[str]) -> int:
    wanted = generate(SOURCE.read_text(encoding="utf-8"))
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != wanted:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python tools/unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
