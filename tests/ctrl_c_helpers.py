"""Ctrl-C pressed at a live view from inside its own process (tests/client/test_cli_ctrl_c.py,
tests/shell/test_live_ctrl_c.py).

:data:`PRESSER` is the start of a script run with ``python -c``: it wraps
``Subscription.get`` to note any exception passing through it (``through``) and defines
``presser``, a thread that sends the process SIGINT twenty times, each while the view still
waits in ``Subscription.get`` (once the view stopped, a press would interrupt the script after
the command instead), then prints ``PRESSED n``. The script goes on to start ``presser``, run
its command, join it and print what it found; :func:`pressed` reads the count back.
"""

from __future__ import annotations

import re

PRESSER = r"""
import os, signal, sys, threading, time

from linkserver.client.sync_ws import Subscription

original = Subscription.get
waiting = threading.Event()
through: list[str] = []


def get(self, timeout=None):
    waiting.set()
    try:
        return original(self, timeout)
    except BaseException as exc:
        through.append(repr(exc))
        raise
    finally:
        waiting.clear()


Subscription.get = get


def press_ctrl_c() -> None:
    pressed = 0
    while pressed < 20 and waiting.wait(2):
        os.kill(os.getpid(), signal.SIGINT)
        pressed += 1
        time.sleep(0.005)
    print(f"PRESSED {pressed}", flush=True)


presser = threading.Thread(target=press_ctrl_c)
"""


def pressed(stdout: str) -> int:
    """How often the presser pressed Ctrl-C (0 if it never said)."""
    found = re.search(r"PRESSED (\d+)", stdout)
    return int(found.group(1)) if found else 0
