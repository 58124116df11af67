"""The admin shell, ``linkserver shell`` (see docs/shell.md).

``commands`` is the command table and the :class:`Shell` state (text in,
text out, no terminal); ``render`` draws tables and events; ``completion``
is the Tab completer; ``app`` runs it all in a prompt-toolkit session or
as a script; ``main`` is the command line.
"""

from __future__ import annotations

__all__ = ["run_shell", "add_shell_command"]


def __getattr__(name: str) -> object:
    # Lazy: importing the package must not pull in prompt-toolkit (the CLI imports it at start).
    if name == "run_shell":
        from linkserver.shell.app import run_shell

        return run_shell
    if name == "add_shell_command":
        from linkserver.shell.main import add_shell_command

        return add_shell_command
    raise AttributeError(name)
