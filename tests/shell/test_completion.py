"""Tab completion against a real server: commands, paths, events, fields, options, filter words."""

from __future__ import annotations

import time

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from shell_helpers import LiveServer, TextConsole

from linkserver.client import Client
from linkserver.shell.commands import Shell
from linkserver.shell.completion import ShellCompleter, split_partial


class CountingClient:
    """Delegates to a Client and counts ``context`` requests."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.context_calls = 0

    def context(self, path: str):
        self.context_calls += 1
        return self.client.context(path)

    def __getattr__(self, name: str):
        return getattr(self.client, name)


@pytest.fixture
def completer(client: Client) -> ShellCompleter:
    return ShellCompleter(Shell(CountingClient(client), TextConsole()))


def texts(completer: ShellCompleter, line: str) -> list[str]:
    return [s.text for s in completer.suggest(line)]


def test_split_partial_tracks_words_quotes_and_semicolons():
    assert split_partial("cd dev") == (["cd"], "dev", "dev", False)
    assert split_partial("ls; fire x ") == (["fire", "x"], "", "", False)
    assert split_partial("history --filter 'level >= W") == (
        ["history", "--filter"],
        "level >= W",
        "'level >= W",
        True,
    )


def test_commands_and_options(completer: ShellCompleter):
    assert texts(completer, "hi") == ["history"]
    assert "acks" in texts(completer, "ac") and "ack" in texts(completer, "ac")
    assert texts(completer, "tree --d") == ["--depth"]
    assert "--unacked" in texts(completer, "history --") and "--filter" not in texts(
        completer, "history --filter x --"
    )
    assert texts(completer, "help wa") == ["watch"]
    assert texts(completer, "nosuch x") == []


def test_paths_relative_absolute_and_parent(completer: ShellCompleter, live: LiveServer):
    device = live.new_device("pump")
    assert texts(completer, "cd dev") == ["devices"]
    assert f"devices.{device}" in texts(completer, "cd devices.pu")
    assert texts(completer, "cd /al") == ["/alerts"]
    completer.shell.cwd = "devices"
    assert device in texts(completer, "cd pu")
    assert texts(completer, "cd ..") == ["../"]
    assert texts(completer, "cd ../al") == ["../alerts"]
    assert texts(completer, "ls /devices/pu").count(f"/devices/{device}") == 1
    assert texts(completer, "cd nowhere.x") == []


def test_masks_offer_wildcards(completer: ShellCompleter):
    assert {"devices.*", "devices.**"} <= set(texts(completer, "watch devices."))
    assert texts(completer, "history devices.*.x") == []


def test_event_names_of_the_context(completer: ShellCompleter, live: LiveServer):
    device = live.new_device()
    completer.shell.cwd = f"devices.{device}"
    assert texts(completer, "fire me") == ["measurement"]
    assert texts(completer, "show st") == ["stateChanged"]
    assert texts(completer, "fire /alerts/ch") == ["/alerts/childAdded", "/alerts/childRemoved"]
    completer.shell.cwd = ""
    assert texts(completer, f"history devices.{device} er") == ["error"]
    assert "*" in texts(completer, f"watch /devices/{device} ")


def test_field_names_and_values_in_fire(completer: ShellCompleter, live: LiveServer):
    completer.shell.cwd = f"devices.{live.new_device()}"
    assert texts(completer, "fire measurement ") == ["quantity=", "value=", "unit="]
    assert texts(completer, "fire measurement quantity=t v") == ["value="]
    assert texts(completer, "fire disconnected reason=ti") == ["reason=timeout"]
    # a coded field's labels too, quoted where they hold spaces
    assert texts(completer, "fire disconnected reason=t") == [
        "reason=timeout",
        "reason='the device stopped answering'",
        "reason='the device refused the connection'",
        "reason='the connection was lost'",
        "reason='the controller failed'",
    ]
    assert texts(completer, "fire disconnected reason='the c") == [
        "reason='the connection was lost'",
        "reason='the controller failed'",
    ]
    assert texts(completer, "fire stateChanged old=online --level W") == ["WARNING"]
    alert = live.new_alert()
    assert "severity=critical" in texts(completer, f"fire /alerts/{alert}/alert severity=")


def test_filter_words(completer: ShellCompleter, live: LiveServer):
    completer.shell.cwd = f"devices.{live.new_device()}"
    assert texts(completer, "history --filter 'lev") == ["level"]
    assert texts(completer, "history --filter 'level >= WA") == ["WARNING"]
    assert texts(completer, "history --filter 'level > 2 a") == ["and"]
    assert "data.value" in texts(completer, "history --filter 'data.v")
    assert "data.code" in texts(completer, "watch . error --filter 'level > 1 and data.")
    assert texts(completer, "history --filter 'name == ") == []


def test_recent_ids_are_offered(completer: ShellCompleter, live: LiveServer, client: Client):
    device = live.new_device()
    completer.shell.execute(f"fire /devices/{device}/error code=E1 message=x")
    event_id = completer.shell.recent_ids[0]
    assert texts(completer, f"ack {str(event_id)[:5]}") == [str(event_id)]


def test_get_completions_yields_prompt_toolkit_completions(completer: ShellCompleter):
    found = list(completer.get_completions(Document("cd dev"), CompleteEvent(completion_requested=True)))
    assert [(c.text, c.start_position) for c in found] == [("devices", -3)]


def test_completion_is_fast_and_cached(
    completer: ShellCompleter, live: LiveServer, capsys: pytest.CaptureFixture
):
    live.new_device()
    client = completer.shell.client
    client.me()  # logged in already, as at a prompt
    started = time.perf_counter()
    texts(completer, "cd devices.d")
    cold = time.perf_counter() - started
    calls = client.context_calls
    started = time.perf_counter()
    for _ in range(100):
        texts(completer, "cd devices.d")
    warm = (time.perf_counter() - started) / 100
    assert client.context_calls == calls  # served from the cache
    assert cold < 0.5 and warm < 0.01
    with capsys.disabled():
        print(f"\n[completion latency] uncached Tab {cold * 1000:.1f} ms, cached {warm * 1000:.3f} ms")


def test_completion_never_raises_when_the_server_is_gone(make_live):
    server = make_live()
    client = Client(server.url)
    completer = ShellCompleter(Shell(client, TextConsole()))
    server.stop()
    assert list(completer.get_completions(Document("cd dev"), CompleteEvent(completion_requested=True))) == []
    client.close()
