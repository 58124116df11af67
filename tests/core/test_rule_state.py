"""Alert rule state: windows, absence, hysteresis and escalation driven with explicit times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from linkserver.core.events import Acknowledgement, Event
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level
from linkserver.core.rule_state import ack_times, new_state, replay
from linkserver.core.rules import ALERT, CLEARED, ESCALATED, Rule, RuleKind, Step, render

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
_ids = iter(range(1, 1_000_000))


def event(context: str, name: str, at: datetime, level: Level = Level.INFO, **data: object) -> Event:
    return Event(next(_ids), context, name, level, at, None, "test", None, ({**data},) if data else ())


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def count_rule(**changes: object) -> Rule:
    values: dict[str, object] = {
        "name": "burst",
        "kind": RuleKind.COUNT,
        "mask": "devices.*",
        "event": "error",
        "count": 3,
        "within": timedelta(seconds=60),
        "alert": "alerts.burst",
    }
    values.update(changes)
    return Rule(**values)  # type: ignore[arg-type]


def test_count_opens_on_the_nth_event_within_the_window_per_key_and_clears_when_it_ages_out() -> None:
    state = new_state(count_rule())
    assert state.observe(event("devices.a", "error", s(0)), s(0)) == []
    assert state.observe(event("devices.b", "error", s(1)), s(1)) == []  # another key
    assert state.observe(event("devices.a", "error", s(10)), s(10)) == []
    (opened,) = state.observe(event("devices.a", "error", s(20)), s(20))
    assert (opened.event, opened.key, opened.data["message"]) == (
        ALERT,
        "devices.a",
        "3 error events within 1m in devices.a",
    )
    assert opened.data["cause"] == "devices.a/error" and opened.data["rule"] == "burst"
    assert state.observe(event("devices.a", "error", s(30)), s(30)) == []  # open: not again
    assert state.next_deadline() == s(70)  # the oldest of the last three (s 10) + 60 s
    assert state.tick(s(69)) == []
    (cleared,) = state.tick(s(70))
    assert (cleared.event, cleared.key) == (CLEARED, "devices.a")


def test_count_status_counts_the_events_still_in_the_window() -> None:
    """What 'rules list' shows as counting: a key whose events aged out counts nothing, though
    the state keeps their times until a tick forgets them."""
    state = new_state(count_rule())
    state.observe(event("devices.a", "error", s(0)), s(0))
    state.observe(event("devices.a", "error", s(30)), s(30))
    state.observe(event("devices.b", "error", s(50)), s(50))
    assert state.status(s(55))["counting"] == {"devices.a": 2, "devices.b": 1}
    assert state.status(s(80))["counting"] == {"devices.a": 1, "devices.b": 1}
    assert state.status(s(200))["counting"] == {}


def test_count_ignores_events_spread_wider_than_the_window() -> None:
    state = new_state(count_rule())
    for second in (0, 40, 80, 120):
        assert state.observe(event("devices.a", "error", s(second)), s(second)) == []


def test_count_per_data_field_keeps_one_window_per_value() -> None:
    state = new_state(count_rule(per="data.port", count=2))
    assert state.observe(event("devices.a", "error", s(0), port=1), s(0)) == []
    assert state.observe(event("devices.b", "error", s(1), port=2), s(1)) == []
    (opened,) = state.observe(event("devices.c", "error", s(2), port=1), s(2))
    assert opened.key == "1"
    assert opened.data["message"] == "2 error events within 1m in data.port 1"  # not 'in 1'


def test_the_default_messages_name_a_rule_wide_key_by_the_rules_mask() -> None:
    state = new_state(count_rule(per="rule", count=1))
    (opened,) = state.observe(event("devices.a", "error", s(0)), s(0))
    assert (opened.key, opened.data["message"]) == ("burst", "1 error events within 1m in devices.*")
    (cleared,) = state.tick(s(60))
    assert cleared.data["message"] == "fewer than 1 error events within 1m in devices.* again"


def test_count_state_survives_a_dump_and_load_as_json() -> None:
    state = new_state(count_rule())
    state.observe(event("devices.a", "error", s(0)), s(0))
    state.observe(event("devices.a", "error", s(10)), s(10))
    rows = {key: json.loads(json.dumps(state.dump(key))) for key in state.take_dirty()}
    again = new_state(count_rule())
    again.load(rows, s(15))
    (opened,) = again.observe(event("devices.a", "error", s(20)), s(20))
    assert opened.event == ALERT
    again.fired(opened, 42)
    rows = {key: json.loads(json.dumps(again.dump(key))) for key in again.take_dirty()}
    third = new_state(count_rule())
    third.load(rows, s(30))
    (cleared,) = third.tick(s(80))
    assert (cleared.event, cleared.data["alert_id"]) == (CLEARED, 42)


def absence_rule() -> Rule:
    return Rule(
        name="silent",
        kind=RuleKind.ABSENCE,
        mask="devices.*",
        event="measurement",
        within=timedelta(minutes=5),
        alert="alerts.silent",
    )


def test_absence_fires_for_a_key_that_stops_and_clears_when_it_reports_again() -> None:
    state = new_state(absence_rule())
    state.seed(["devices.never"], s(0))  # type: ignore[attr-defined]
    state.observe(event("devices.a", "measurement", s(10)), s(10))
    state.observe(event("devices.b", "measurement", s(20)), s(20))
    state.observe(event("devices.a", "measurement", s(200)), s(200))
    assert state.tick(s(299)) == []
    (never,) = state.tick(s(300))
    assert never.key == "devices.never"
    (silent,) = state.tick(s(330))
    assert (silent.event, silent.key, silent.data["message"]) == (
        ALERT,
        "devices.b",
        "no measurement from devices.b for 5m",
    )
    assert state.tick(s(340)) == []  # open: once
    (back,) = state.observe(event("devices.b", "measurement", s(400)), s(400))
    assert (back.event, back.key) == (CLEARED, "devices.b")
    assert state.next_deadline() == s(500)  # devices.a, seen at 200


def test_absence_state_reloaded_keeps_the_open_alert_and_the_last_seen_times() -> None:
    state = new_state(absence_rule())
    state.observe(event("devices.a", "measurement", s(0)), s(0))
    state.observe(event("devices.b", "measurement", s(100)), s(100))
    (opened,) = state.tick(s(301))
    state.fired(opened, 7)
    rows = {key: json.loads(json.dumps(state.dump(key))) for key in state.take_dirty()}
    again = new_state(absence_rule())
    again.load(rows, s(350))
    assert again.tick(s(350)) == []  # devices.a is open already
    (cleared,) = again.observe(event("devices.a", "measurement", s(360)), s(360))
    assert cleared.data["alert_id"] == 7
    (b,) = again.tick(s(400))
    assert b.key == "devices.b"


def test_threshold_opens_and_closes_with_hysteresis() -> None:
    rule = Rule(
        name="hot",
        kind=RuleKind.THRESHOLD,
        mask="devices.*",
        event="measurement",
        open=parse_filter("data.value > 80"),
        close=parse_filter("data.value < 70"),
        alert="alerts.hot",
    )
    state = new_state(rule)
    seen = [
        state.observe(event("devices.a", "measurement", s(i), value=v), s(i))
        for i, v in enumerate([75, 81, 90, 75, 81, 69, 75])
    ]
    assert [[f.event for f in fired] for fired in seen] == [[], [ALERT], [], [], [], [CLEARED], []]


def escalation_rule(repeat: timedelta | None = None) -> Rule:
    return Rule(
        name="page",
        kind=RuleKind.ESCALATION,
        mask="alerts.*",
        event="alert",
        steps=(
            Step(after=timedelta(minutes=15), notify=("oncall",)),
            Step(after=timedelta(hours=1), level=Level.FATAL, notify=("oncall", "manager")),
        ),
        repeat=repeat,
        alert="alerts.page",
    )


def test_escalation_steps_raise_the_level_and_repeat_until_acknowledged() -> None:
    state = new_state(escalation_rule(repeat=timedelta(hours=1)))
    alert = event("alerts.hot", "alert", s(0), Level.WARNING, message="hot")
    state.observe(alert, s(0))
    acknowledged_at: dict[int, datetime] = {}

    def acknowledged(event_id: int, now: datetime) -> bool:
        return event_id in acknowledged_at and acknowledged_at[event_id] <= now

    (first,) = state.tick(s(15 * 60), acknowledged)
    assert (first.event, first.level, first.data["step"], first.data["notified"]) == (
        ESCALATED,
        Level.ERROR,
        1,
        "oncall",
    )
    assert first.data["alert_id"] == alert.id and first.data["alert_context"] == "alerts.hot"
    assert state.tick(s(59 * 60), acknowledged) == []
    (second,) = state.tick(s(3600), acknowledged)
    assert (second.level, second.data["step"], second.data["notified"]) == (Level.FATAL, 2, "oncall, manager")
    (third,) = state.tick(s(7200), acknowledged)
    assert third.data["step"] == 3
    acknowledged_at[alert.id] = s(7300)
    assert state.tick(s(10800), acknowledged) == []
    assert state.next_deadline() is None


def test_escalation_without_repeat_stops_after_its_last_step() -> None:
    state = new_state(escalation_rule())
    state.observe(event("alerts.hot", "alert", s(0), Level.WARNING, message="hot"), s(0))
    assert len(state.tick(s(3600))) == 2  # both steps were due
    assert state.next_deadline() is None


def test_replay_shows_what_a_count_rule_would_have_fired_and_when() -> None:
    events = [event("devices.a", "error", s(t)) for t in (0, 5, 10, 100, 300, 301, 302)]
    fired = replay(count_rule(), events, s(1000))
    assert [(f.event, f.at) for f in fired] == [
        (ALERT, s(10)),
        (CLEARED, s(60)),
        (ALERT, s(302)),
        (CLEARED, s(360)),
    ]


def test_replay_of_an_escalation_stops_at_the_recorded_acknowledgement() -> None:
    alert = event("alerts.hot", "alert", s(0), Level.WARNING, message="hot")
    acked = Event(
        alert.id,
        alert.context,
        alert.name,
        alert.level,
        alert.created,
        None,
        None,
        None,
        alert.data,
        (Acknowledgement(time=s(30 * 60), user="op", text="on it"),),
    )
    fired = replay(
        escalation_rule(repeat=timedelta(hours=1)), [acked], s(86400), acknowledged=ack_times([acked])
    )
    assert [f.data["step"] for f in fired] == [1]


def test_a_message_naming_an_unknown_value_renders_it_visibly() -> None:
    assert render("{key} is {nope} {", {"key": "a"}) == "{key} is {nope} {"
    assert render("{key} is {nope}", {"key": "a"}) == "a is {nope}"
