"""Commands parsed and run against a real server over the client: strings in, text out."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shell_helpers import LiveServer, ShellDriver, TextConsole

from linkserver.client import Client
from linkserver.client.errors import AuthenticationFailed
from linkserver.core.errors import (
    ContextNotFound,
    DataTableError,
    EventNotDefined,
    FilterError,
    LinkServerError,
    PermissionDenied,
)
from linkserver.core.statemachines import InvalidTransition
from linkserver.history.base import HistoryQuery
from linkserver.shell.commands import (
    ShellError,
    describe_error,
    parse_record,
    parse_time,
    resolve,
    split_commands,
)

# -- pure parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cwd", "text", "expected"),
    [
        ("", "devices", "devices"),
        ("devices", "plc7", "devices.plc7"),
        ("devices", "plc7.io", "devices.plc7.io"),
        ("devices.plc7", "..", "devices"),
        ("devices.plc7", "../plc8", "devices.plc8"),
        ("devices.plc7", "../..", ""),
        ("", "..", ""),
        ("devices", "/alerts", "alerts"),
        ("devices", "/alerts/pump", "alerts.pump"),
        ("devices", "/", ""),
        ("devices", "root", ""),
        ("devices", ".", "devices"),
    ],
)
def test_resolve_paths_relative_absolute_and_parent(cwd, text, expected):
    assert resolve(cwd, text) == expected


def test_resolve_masks_and_bad_names():
    assert resolve("devices", "*", mask=True) == "devices.*"
    assert resolve("devices", "/**", mask=True) == "**"
    with pytest.raises(ShellError, match="'a..b' is not a context path"):
        resolve("", "a..b")
    with pytest.raises(ShellError, match="not a context path: '\\*'"):
        resolve("", "devices.*")
    with pytest.raises(ShellError, match="not a name"):
        resolve("", "dev-7")


def test_split_commands_on_semicolons_outside_quotes():
    assert list(split_commands("cd devices; ls 'a b';; fire x m=\"1;2\"")) == [
        ["cd", "devices"],
        ["ls", "a b"],
        ["fire", "x", "m=1;2"],
    ]
    with pytest.raises(ShellError, match="close the quote"):
        list(split_commands("fire x m='open"))


def test_parse_time_accepts_iso_dates_durations_and_words():
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now) == now - timedelta(hours=2)
    assert parse_time("2026-05-01T10:00:00Z") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_time("now", now) == now
    assert parse_time("2026-05-01").tzinfo is not None
    assert parse_time("today", now) <= now
    with pytest.raises(ShellError, match="'soon' is not a time"):
        parse_time("soon")


def test_parse_record_types_values_and_names_every_bad_field():
    fields = [
        {"name": "value", "type": "float"},
        {"name": "count", "type": "integer"},
        {"name": "ok", "type": "boolean"},
        {"name": "note", "type": "string", "nullable": True},
    ]
    assert parse_record(["value=2.5", "count=3", "ok=yes", "note=null"], fields) == {
        "value": 2.5,
        "count": 3,
        "ok": True,
        "note": None,
    }
    with pytest.raises(ShellError) as caught:
        parse_record(["value=abc", "count=1.5", "bogus=1", "oops"], fields)
    message = str(caught.value)
    assert "value='abc' is not a number" in message and "count='1.5' is not a whole number" in message
    assert "bogus: unknown field (known fields: value, count, ok, note)" in message
    assert "'oops': expected field=value" in message


# -- navigation and definitions ------------------------------------------------------------


def test_cd_ls_pwd_relative_absolute_and_parent(sh: ShellDriver, live: LiveServer):
    device = live.new_device()
    assert sh.run("pwd") == "root\n"
    assert "devices" in sh.run("ls") and "alerts" in sh.run("ls")
    sh.run("cd devices")
    assert device in sh.run("ls")
    sh.run(f"cd {device}")
    assert sh.run("pwd") == f"devices.{device}\n"
    sh.run("cd ../..; cd /alerts")
    assert sh.run("pwd") == "alerts\n"
    sh.run("cd")
    assert sh.run("pwd") == "root\n"
    assert sh.run(f"ls /devices/{device}").endswith(
        f"0 child context(s); 8 event(s) defined in devices.{device} (see 'events')\n"
    )


def test_cd_to_a_missing_context_names_it_and_stays(sh: ShellDriver):
    sh.run("cd devices")
    with pytest.raises(ContextNotFound) as caught:
        sh.run("cd nowhere")
    assert "devices.nowhere" in describe_error(caught.value)
    assert sh.run("pwd") == "devices\n"


def test_tree_with_depth(sh: ShellDriver, live: LiveServer):
    device = live.new_device()
    text = sh.run("tree / --depth 1")
    assert text.startswith("root") and "├── devices" in text and device not in text
    assert device in sh.run("tree devices")


def test_events_and_show(sh: ShellDriver, live: LiveServer):
    sh.run(f"cd /devices/{live.new_device()}")
    text = sh.run("events")
    assert "measurement" in text and "NOTICE" in text and "1d (definition)" in text
    assert "180d (expiration table: devices.** error)" in text
    detail = sh.run("show measurement")
    assert "persistent, kept 1d (definition)" in detail and "receive: observer, fire: operator" in detail
    assert "persistent, kept 180d (expiration table: devices.** error)" in sh.run("show error")
    assert "history          not stored" in sh.run("show childAdded")
    assert "quantity" in detail and "pattern [A-Za-z0-9_]+" in detail and "float" in detail
    with pytest.raises(EventNotDefined, match="defined there: .*measurement"):
        sh.run("show measurment")


# -- fire --------------------------------------------------------------------------------


def test_fire_types_values_by_the_definition(sh: ShellDriver, live: LiveServer, client: Client):
    device = live.new_device()
    sh.run(f"cd /devices/{device}")
    text = sh.run("fire measurement quantity=temperature value=21 unit=degC --level WARNING --durable")
    assert text.startswith(f"fired devices.{device}/measurement #") and text.rstrip().endswith("WARNING")
    event_id = int(text.split("#")[1].split()[0])
    stored = client.event(event_id)
    assert stored.data == ({"quantity": "temperature", "value": 21.0, "unit": "degC"},)
    assert isinstance(stored.data[0]["value"], float)


def test_fire_with_qualified_name_and_json_data(sh: ShellDriver, live: LiveServer):
    device = live.new_device()
    text = sh.run(f'fire /devices/{device}/error --data \'{{"code": "E1", "message": "x"}}\'')
    assert f"devices.{device}/error" in text and "ERROR" in text


def test_fire_names_every_bad_field(sh: ShellDriver, live: LiveServer):
    sh.run(f"cd /devices/{live.new_device()}")
    with pytest.raises(ShellError) as caught:
        sh.run("fire measurement quantity=t value=warm bogus=1")
    assert "value='warm' is not a number" in str(caught.value) and "bogus: unknown field" in str(caught.value)
    with pytest.raises(DataTableError) as refused:  # what only the server checks: the pattern
        sh.run("fire measurement quantity=not-a-name value=1")
    assert "quantity" in describe_error(refused.value) and "\n" not in describe_error(refused.value)


def test_fire_takes_a_coded_field_by_its_label(sh: ShellDriver, live: LiveServer, client: Client):
    device = live.new_device()
    sh.run(f"cd /devices/{device}")
    text = sh.run("fire disconnected reason='the device stopped answering' --durable")
    event_id = int(text.split("#")[1].split()[0])
    assert client.event(event_id).record == {"reason": "timeout"}
    with pytest.raises(ShellError) as caught:
        sh.run("fire disconnected reason=timout")
    message = str(caught.value)
    assert "reason='timout' is not one of the allowed values or a label: stopped (stopped by" in message
    assert message.endswith("did you mean 'timeout'?")


def test_fire_needs_the_permission(live: LiveServer):
    with Client(live.url, user="observer", password="observer-pw") as observer:
        driver = ShellDriver(observer, TextConsole())
        with pytest.raises(PermissionDenied) as caught:
            driver.run(f"fire /devices/{live.new_device()}/error code=E1 message=x")
    assert describe_error(caught.value).startswith("permission denied:")


# -- history, event, ack -------------------------------------------------------------------


def test_history_pages_with_more(sh: ShellDriver, live: LiveServer, client: Client):
    device = live.new_device()
    for i in range(25):
        client.fire(f"devices.{device}", "measurement", [{"quantity": "t", "value": i}])
    sh.run(f"cd /devices/{device}")
    first = sh.run("history --limit 10")
    assert (
        first.count("measurement") == 10 and "value=24.0" in first and "'more' shows the next page" in first
    )
    second = sh.run("more")
    assert second.count("measurement") == 10 and "value=14.0" in second
    third = sh.run("more")
    assert third.count("measurement") == 5 and "more" not in third.splitlines()[-1]
    with pytest.raises(ShellError, match="no more events"):
        sh.run("more")
    everything = sh.run("history . measurement --all --limit 7 --oldest")
    assert everything.count("measurement") == 25 and everything.index("value=0.0") < everything.index(
        "value=9.0"
    )


def test_history_filter_level_since_and_bad_filter(sh: ShellDriver, live: LiveServer, client: Client):
    device = live.new_device()
    path = f"devices.{device}"
    client.fire(path, "measurement", [{"quantity": "t", "value": 10}])
    client.fire(path, "measurement", [{"quantity": "t", "value": 90}])
    client.fire(path, "error", {"code": "E7", "message": "hot"})
    sh.run(f"cd /devices/{device}")
    hot = sh.run("history --filter 'data.value > 50'")
    assert "value=90.0" in hot and "value=10.0" not in hot
    assert sh.run("history --level ERROR --since 10m").count(path) == 1
    assert sh.run("history --until 2020-01-01") == "(no events)\n"
    with pytest.raises(FilterError) as caught:
        sh.run("history --filter 'data.value >'")
    assert describe_error(caught.value).startswith("bad filter: column")
    with pytest.raises(LinkServerError):
        sh.run("history --level LOUD")
    with pytest.raises(FilterError) as caught:  # a typo is an error, not "(no events)"
        sh.run("history --filter 'data.valu > 50'")
    assert "did you mean 'data.value'" in describe_error(caught.value)


def test_event_ack_and_acks(sh: ShellDriver, live: LiveServer, client: Client):
    alert = live.new_alert()
    fired = client.fire(f"alerts.{alert}", "alert", {"message": "pressure low"})
    assert f"alerts.{alert}" in sh.run("history /alerts.** --unacked")
    detail = sh.run(f"event {fired.id}")
    assert "PENDING" in detail and "pressure low" in detail and "severity" in detail
    assert "acknowledged" in sh.run(f"ack {fired.id} opened the valve")
    assert f"alerts.{alert}" not in sh.run("history /alerts.** --unacked")
    acks = sh.run(f"acks {fired.id}")
    assert "admin" in acks and "opened the valve" in acks
    assert "given 1x" in sh.run(f"event #{fired.id}")


def test_an_alert_whose_context_was_removed_still_shows_its_acknowledgement_is_pending(
    sh: ShellDriver, live: LiveServer, client: Client
):
    alert = live.new_alert()
    fired = client.fire(f"alerts.{alert}", "alert", {"message": "tank overflow"})
    client.remove_context(f"alerts.{alert}")
    detail = sh.run(f"event {fired.id}")
    assert "required, PENDING" in detail and "tank overflow" in detail
    assert f"alerts.{alert}" in sh.run("history /alerts.** --unacked")
    device = live.new_device()
    plain = client.fire(f"devices.{device}", "error", {"code": "E1", "message": "jam"})
    client.remove_context(f"devices.{device}")
    assert "not required (0 given)" in sh.run(f"event {plain.id}")


def test_ack_without_text_asks_for_it(live: LiveServer, client: Client):
    alert = live.new_alert()
    fired = client.fire(f"alerts.{alert}", "alert", {"message": "door open"})
    console = TextConsole(answers=["closed it", ""])
    driver = ShellDriver(client, console)
    assert "acknowledged" in driver.run(f"ack {fired.id}")
    assert console.questions == [f"acknowledgement text for #{fired.id}: "]
    assert "not acknowledged" in driver.run(f"ack {fired.id}")
    assert len(client.event(fired.id).acknowledgements) == 1
    script = ShellDriver(client, TextConsole(answers=None))
    with pytest.raises(ShellError, match="ack needs the text"):
        script.run(f"ack {fired.id}")


def test_event_of_unknown_id_is_one_line(sh: ShellDriver):
    with pytest.raises(LinkServerError) as caught:
        sh.run("event 12345")
    assert "12345" in describe_error(caught.value)
    with pytest.raises(ShellError, match="expected an event id"):
        sh.run("event twelve")


# -- watch and devices --------------------------------------------------------------------


class FiringConsole(TextConsole):
    """Fires ``fire()`` once the watch says it is watching."""

    def __init__(self, fire, answers=None) -> None:
        super().__init__(answers)
        self.fire = fire

    def write(self, text: str = "") -> None:
        super().write(text)
        if text.startswith("watching "):
            threading.Thread(target=self.fire).start()


def test_watch_prints_events_as_they_fire(live: LiveServer, client: Client):
    device = live.new_device()
    path = f"devices.{device}"

    def fire() -> None:
        client.fire(path, "measurement", [{"quantity": "t", "value": 1}])
        client.fire(path, "error", {"code": "E9", "message": "jam"})

    driver = ShellDriver(client, FiringConsole(fire))
    text = driver.run(f"watch /devices/{device} --count 2 --seconds 10")
    lines = text.splitlines()
    assert lines[0].startswith(f"watching {path} *")
    assert f"{path}/measurement" in lines[1] and "NOTICE" in lines[1]
    assert f"{path}/error" in lines[2] and "code=E9" in lines[2]
    assert lines[-1] == "stopped watching (2 event(s))"


def test_watch_asks_to_acknowledge_alerts(live: LiveServer, client: Client):
    alert = live.new_alert()
    path = f"alerts.{alert}"
    console = FiringConsole(
        lambda: client.fire(path, "alert", {"message": "smoke"}), answers=["checked, false alarm"]
    )
    driver = ShellDriver(client, console)
    text = driver.run(f"watch /{path} alert --count 1 --seconds 10")
    assert console.questions and console.questions[0].startswith(f"acknowledge {path}/alert #")
    assert f"acknowledged {path}/alert" in text
    stored = client.history(mask=path, event="alert").events[0]
    assert [a.text for a in stored.acknowledgements] == ["checked, false alarm"]


def test_watch_skips_an_alert_on_empty_answer_and_with_no_ack(live: LiveServer, client: Client):
    path = f"alerts.{live.new_alert()}"
    console = FiringConsole(lambda: client.fire(path, "alert", {"message": "smoke"}), answers=[""])
    assert "skipped" in ShellDriver(client, console).run(f"watch /{path} --count 1 --seconds 10")
    quiet = FiringConsole(lambda: client.fire(path, "alert", {"message": "again"}), answers=["x"])
    ShellDriver(client, quiet).run(f"watch /{path} --count 1 --seconds 10 --no-ack")
    assert quiet.questions == []
    assert all(not e.acknowledgements for e in client.history(mask=path).events)


def test_watch_with_a_bad_filter_is_refused_before_subscribing(sh: ShellDriver):
    with pytest.raises(FilterError):
        sh.run("watch --filter 'level >= LOUD'")


def test_devices_shows_connection_state(sh: ShellDriver, live: LiveServer, client: Client):
    up, down = live.new_device("up"), live.new_device("down")
    client.fire(f"devices.{up}", "connected", {"address": "10.0.0.7:502"})
    client.transition(f"devices.{up}", "connect")  # the state comes from the device state machine
    client.fire(f"devices.{down}", "connected", {})
    client.fire(f"devices.{down}", "disconnected", {"reason": "timeout"})
    text = sh.run("devices")
    row_up = next(line for line in text.splitlines() if line.startswith(up))
    row_down = next(line for line in text.splitlines() if line.startswith(down))
    assert "connected" in row_up and "online" in row_up and "10.0.0.7:502" in row_up
    assert "disconnected" in row_down and "reason=timeout" in row_down and "offline" in row_down


def test_state_shows_and_changes_a_resource_and_jobs_lists_jobs(
    sh: ShellDriver, live: LiveServer, client: Client
):
    device = live.new_device("lamp")
    assert sh.run(f"state /devices.{device}") == (
        f"devices.{device} (device): offline\n"
        "  allowed: start -> starting; connect -> online; maintain -> maintenance\n"
    )
    assert sh.run(f"state /devices.{device} connect").startswith(f"devices.{device}: offline -> online\n")
    with pytest.raises(InvalidTransition, match=f"devices.{device} is online: action 'start' is not allowed"):
        sh.run(f"state /devices.{device} start")
    client.schedule_job("ROOT.CHECK", job_id="check1", start=True)
    text = sh.run("jobs")
    assert "check1" in text and "ROOT.CHECK" in text and "started" in text and "1 job(s)" in text


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("frie error", "unknown command 'frie' (did you mean 'fire'?)"),
        ("ls --long", "ls: unrecognized arguments: --long"),
        ("tree --depth zero", "expected a whole number"),
        ("history --limit 0", "expected a whole number of at least 1"),
        ("cd a/b..c", "is not a context path"),
        ("fire", "the following arguments are required: event"),
        ("fire bad-name", "'bad-name' is not an event name"),
    ],
)
def test_bad_input_is_one_line(sh: ShellDriver, line: str, message: str):
    with pytest.raises(ShellError) as caught:
        sh.run(line)
    text = describe_error(caught.value)
    assert message in text and "\n" not in text


def test_help_lists_commands_and_explains_one(sh: ShellDriver):
    text = sh.run("help")
    for name in [
        "ls",
        "cd",
        "tree",
        "events",
        "show",
        "fire",
        "history",
        "event",
        "watch",
        "ack",
        "acks",
        "devices",
    ]:
        assert f"\n{name} " in text
    assert sh.run("help history").startswith("usage: history [MASK] [EVENT]")
    assert sh.run("history --help") == sh.run("help history")
    assert sh.run("exit") == ""
    assert sh.shell.execute("quit") is False


# -- passwd ------------------------------------------------------------------------------------


def test_passwd_changes_ones_own_password_and_keeps_this_session(make_live: Any) -> None:
    live = make_live()
    with (
        Client(live.url, user="operator", password="operator-pw") as me,
        Client(live.url, user="operator", password="operator-pw") as elsewhere,
    ):
        assert elsewhere.me()["user"] == "operator"
        console = TextConsole(answers=["operator-pw", "a-better-password", "a-better-password"])
        driver = ShellDriver(me, console)
        assert "password of operator changed" in driver.run("passwd")
        assert console.questions == [
            "current password of operator: ",
            "new password: ",
            "new password again: ",
        ]
        assert driver.run("me").startswith("operator at")  # this session goes on
        assert me.credentials.password == "a-better-password"
        with pytest.raises(AuthenticationFailed):
            elsewhere.me()  # the other session ended; its old password no longer logs in
    with Client(live.url, user="operator", password="a-better-password") as again:
        assert again.me()["user"] == "operator"
    live.server.history.flush()
    query = HistoryQuery(masks=("users.operator",), names=("passwordChanged",))
    [changed] = live.server.history.query(query).events
    assert changed.record == {"username": "operator", "by": "operator"} and changed.author == "operator"


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        (["wrong-current", "a-better-password", "a-better-password"], "wrong user name or password"),
        (["operator-pw", "a-better-password", "a-different-one"], "differ"),
        (["operator-pw", "short", "short"], "at least 8 characters"),
        (None, "needs a terminal"),
    ],
)
def test_passwd_refuses_and_changes_nothing(make_live: Any, answers: list[str] | None, error: str) -> None:
    live = make_live()
    with (
        Client(live.url, user="operator", password="operator-pw") as me,
        pytest.raises(LinkServerError, match=error),
    ):
        ShellDriver(me, TextConsole(answers=answers)).run("passwd")
    with Client(live.url, user="operator", password="operator-pw") as again:
        assert again.me()["user"] == "operator"
