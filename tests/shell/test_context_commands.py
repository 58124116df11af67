"""``add`` and ``remove`` change the context tree on a real server: relative and absolute paths,
the question before a removal (and scripts, which cannot answer it), permissions."""

from __future__ import annotations

import pytest
from shell_helpers import LiveServer, ShellDriver, TextConsole

from linkserver.client import Client
from linkserver.core.errors import ContextNotFound, PermissionDenied
from linkserver.shell.commands import ShellError


def test_add_then_remove_with_yes(sh: ShellDriver, client: Client) -> None:
    sh.run("cd devices")
    assert sh.run("add pump9 --description 'Pump 9'") == "added devices.pump9\n"
    assert sh.run("add /devices/pump9/motor") == "added devices.pump9.motor\n"
    assert "motor" in sh.run("ls pump9")  # the shell's view of the tree follows at once
    assert client.context("devices.pump9")["description"] == "Pump 9"
    sh.run("cd pump9/motor")
    assert sh.run("remove /devices/pump9 --yes") == (
        "removed 2 context(s): devices.pump9.motor, devices.pump9\n"
    )
    assert sh.run("pwd") == "devices\n"  # it stood in the removed subtree
    with pytest.raises(ContextNotFound):
        client.context("devices.pump9")


def test_remove_asks_first_and_a_no_removes_nothing(live: LiveServer, client: Client) -> None:
    client.add_context("devices.pump8")
    client.add_context("devices.pump8.motor")
    console = TextConsole(answers=["n", "yes"])
    driver = ShellDriver(client, console)
    assert driver.run("remove /devices.pump8") == "nothing removed\n"
    assert console.questions == ["remove devices.pump8 and everything below it (1 child context(s))? [y/N] "]
    assert client.context("devices.pump8")
    assert driver.run("remove /devices.pump8").startswith("removed 2 context(s)")


def test_a_script_cannot_answer_and_needs_yes(sh: ShellDriver, client: Client) -> None:
    client.add_context("devices.pump7")
    with pytest.raises(ShellError, match="nobody can answer here; add --yes to remove devices.pump7"):
        sh.run("remove /devices.pump7")
    assert client.context("devices.pump7")
    with pytest.raises(ShellError, match="the root cannot be removed"):
        sh.run("remove / --yes")
    with pytest.raises(ShellError, match="the root exists already"):
        sh.run("add /")


def test_changing_the_tree_needs_admin(live: LiveServer, client: Client) -> None:
    client.add_context("devices.pump6")
    with Client(live.url, user="observer", password="observer-pw") as observer:
        driver = ShellDriver(observer, TextConsole())
        with pytest.raises(PermissionDenied):
            driver.run("add /devices.pump5")
        with pytest.raises(PermissionDenied):
            driver.run("remove /devices.pump6 --yes")
    assert client.context("devices.pump6")
