"""The shell's ``add`` and ``remove`` commands: change the context tree (docs/shell.md);
registered by importing."""

from __future__ import annotations

import argparse

from linkserver.shell.session import Arg, Shell, ShellError, _ctx, command, wire

SHOWN = 5
"""Removed paths named after a removal (a subtree may hold thousands)."""


@command(
    "add",
    "add PATH [--template NAME] [--description TEXT]",
    "add a context (admin on its parent); its definitions come from its template",
    Arg("path", "path", "the new context, relative to here or /absolute"),
    Arg("--template", "text", "the template to take (default: what the parent gives its children)"),
    Arg("--description", "text", "what the context is"),
    example="add /devices.pump9 --description 'Pump 9'\nadd ../sim4",
)
def _add(shell: Shell, a: argparse.Namespace) -> None:
    path = shell.path(a.path)
    if not path:
        raise ShellError("add: the root exists already; name the new context, e.g. add /devices.pump9")
    added = shell.client.add_context(wire(path), template=a.template, description=a.description)
    shell.contexts.clear()  # the parent's children changed
    shell.write(f"added {_ctx(added)}")


@command(
    "remove",
    "remove PATH [--yes]",
    "remove a context and everything below it (admin on it); asks first unless --yes",
    Arg("path", "path", "the context to remove, relative to here or /absolute"),
    Arg("--yes", "flag", "remove without asking (scripts cannot answer: they need it)"),
    example="remove /devices.pump9\nremove old --yes",
)
def _remove(shell: Shell, a: argparse.Namespace) -> None:
    path = shell.path(a.path)
    if not path:
        raise ShellError("remove: the root cannot be removed")
    if not a.yes:
        children = len(shell.client.tree(wire(path), depth=1).get("children") or ())
        below = f" and everything below it ({children} child context(s))" if children else ""
        answer = shell.console.ask(f"remove {_ctx(path)}{below}? [y/N] ")
        if answer is None:
            raise ShellError(f"remove: nobody can answer here; add --yes to remove {_ctx(path)}")
        if answer.strip().lower() not in ("y", "yes"):
            shell.write("nothing removed")
            return
    removed = shell.client.remove_context(wire(path))
    shell.contexts.clear()
    if shell.cwd == path or shell.cwd.startswith(path + "."):
        shell.cwd = path.rpartition(".")[0]  # the current context went: its parent's is kept
    named = ", ".join(_ctx(p) for p in removed[:SHOWN])
    more = f" and {len(removed) - SHOWN} more" if len(removed) > SHOWN else ""
    shell.write(f"removed {len(removed)} context(s): {named}{more}")
