import threading
import time
from datetime import timedelta

import pytest

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import (
    ContextNotFound,
    DataTableError,
    EventNotDefined,
    FilterError,
    InvalidName,
    PermissionDenied,
)
from linkserver.core.expiration import ExpirationRule, ExpirationTable
from linkserver.core.formats import Field, TableFormat
from linkserver.core.levels import InvalidLevel, Level
from linkserver.core.permissions import Grants, Principal
from linkserver.history.base import HistoryQuery
from linkserver.testing import CapturingListener, engine_with
from linkserver.typing import Gap

READING = TableFormat(
    fields=[
        Field(name="quantity", type="string"),
        Field(name="value", type="float"),
        Field(name="unit", type="string", default="degC"),
    ]
)
CHILD = TableFormat(fields=[Field(name="name", type="string"), Field(name="path", type="string")])
STANDARD = [
    EventDefinition(name="childAdded", format=CHILD),
    EventDefinition(name="childRemoved", format=CHILD),
]
DEVICE = [
    EventDefinition(name="measurement", level="notice", format=READING),
    EventDefinition(
        name="error",
        level="error",
        persistent=True,
        expiration=timedelta(days=2),
        fire_permissions="engineer",
    ),
    EventDefinition(name="debug", hidden=True),
    EventDefinition(name="secret", permissions="admin"),
] + STANDARD


@pytest.fixture
def engine():
    engine = engine_with(
        {"": STANDARD, "devices": STANDARD},
        templates={"device": DEVICE},
        child_templates={"devices": "device"},
    )
    engine.add_context("devices.plc7")
    yield engine
    engine.close()


def stored(engine):
    return engine.history.query(HistoryQuery(limit=1000)).events


def test_fire_validates_builds_and_delivers(engine):
    seen = CapturingListener()
    engine.listen("devices.*", "measurement", seen)
    event = engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 3}, author="sim")
    assert event.data == ({"quantity": "t", "value": 3.0, "unit": "degC"},)
    assert event.level is Level.NOTICE and event.author == "sim" and event.expires is None
    assert seen.events == [event]
    assert stored(engine) == ()


def test_persistent_events_are_stored_with_expiry(engine):
    event = engine.fire("devices.plc7", "error", durable=True)
    assert event.expires - event.created == timedelta(days=2)
    assert [e.id for e in stored(engine)] == [event.id]


def test_expiration_table_overrides_the_definition():
    engine = engine_with(
        {"devices": []},
        templates={"device": DEVICE},
        child_templates={"devices": "device"},
        expiration=ExpirationTable(
            [ExpirationRule(mask="devices.*", event="error", expiration=timedelta(hours=1))]
        ),
    )
    engine.add_context("devices.d1")
    event = engine.fire("devices.d1", "error")
    assert event.expires - event.created == timedelta(hours=1)


def test_firer_may_override_the_level(engine):
    assert engine.fire("devices.plc7", "error", level="fatal").level is Level.FATAL


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("devices.ghost", "measurement", {}), {}, ContextNotFound, "'devices.ghost' does not exist"),
        (("devices.plc7", "measurment", {}), {}, EventNotDefined, "'measurment' is not defined in context"),
        (
            ("devices.plc7", "measurement", {"quantity": 1, "value": "x", "bogus": 1}),
            {},
            DataTableError,
            "invalid data for measurement in devices.plc7: quantity: expected a string",
        ),
        (
            ("devices.plc7", "measurement", {"quantity": "t", "value": 1}),
            {"level": "loud"},
            InvalidLevel,
            "loud",
        ),
        (("devices..x", "measurement", {}), {}, InvalidName, "devices..x"),
    ],
)
def test_bad_fires_raise_clear_errors_and_store_and_deliver_nothing(engine, args, kwargs, error, message):
    seen = CapturingListener()
    engine.listen("**", "*", seen)
    with pytest.raises(error, match=message):
        engine.fire(*args, **kwargs)
    assert seen.events == []
    assert stored(engine) == ()


def test_data_table_error_names_every_bad_field(engine):
    with pytest.raises(DataTableError) as info:
        engine.fire("devices.plc7", "measurement", {"quantity": 1, "value": "x", "bogus": 1})
    assert info.value.fields == ["quantity", "value", "bogus"]


def test_fire_permissions_are_checked_for_principals(engine):
    operator = Principal(name="olga", grants=Grants({"**": "operator"}))
    engineer = Principal(name="ed", grants=Grants({"devices.**": "engineer"}))
    with pytest.raises(PermissionDenied, match="olga may not fire error in devices.plc7: it needs engineer"):
        engine.fire("devices.plc7", "error", author=operator)
    assert stored(engine) == ()
    assert engine.fire("devices.plc7", "error", author=engineer).author == "ed"


def test_subscribers_only_receive_what_they_may_see(engine):
    observer = Principal(name="obs", grants=Grants({"**": "observer"}))
    admin = Principal(name="adm", grants=Grants({"**": "admin"}))
    outsider = Principal(name="out", grants=Grants({"users.**": "admin"}))
    seen = {p.name: CapturingListener() for p in (observer, admin, outsider)}
    for principal in (observer, admin, outsider):
        engine.listen("devices.**", "*", seen[principal.name], principal=principal)
    engine.fire("devices.plc7", "secret")
    engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 1})
    assert seen["adm"].names() == ["secret", "measurement"]
    assert seen["obs"].names() == ["measurement"]
    assert seen["out"].names() == []


def test_star_skips_hidden_events_but_a_named_subscription_gets_them(engine):
    star, named = CapturingListener(), CapturingListener()
    engine.listen("**", "*", star)
    engine.listen("devices.plc7", "debug", named)
    engine.fire("devices.plc7", "debug")
    assert star.events == [] and named.names() == ["debug"]


def test_min_level_and_filter(engine):
    seen = CapturingListener()
    engine.listen("devices.*", "*", seen, min_level="warning")
    filtered = CapturingListener()
    engine.listen("devices.*", "measurement", filtered, filter='data.value > 10 and data.unit == "degC"')
    engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 5})
    engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 50})
    engine.fire("devices.plc7", "error")
    assert seen.names() == ["error"]
    assert [e.record["value"] for e in filtered.events] == [50.0]


def test_filter_on_a_misspelt_field_fails_at_subscribe_time(engine):
    with pytest.raises(FilterError, match="valeu"):
        engine.listen("devices.*", "measurement", CapturingListener(), filter="data.valeu > 3")
    assert engine.subscriptions == []


def test_subscribing_to_an_event_nobody_defines_is_an_error(engine):
    with pytest.raises(EventNotDefined, match="measurment"):
        engine.listen("devices.*", "measurment", CapturingListener())


def test_mask_subscriptions_cover_contexts_added_later(engine):
    seen = CapturingListener()
    engine.listen("devices.*", "measurement", seen)
    engine.add_context("devices.new")
    engine.fire("devices.new", "measurement", {"quantity": "t", "value": 1})
    engine.remove_context("devices.new")
    engine.add_context("devices.new")
    engine.fire("devices.new", "measurement", {"quantity": "t", "value": 2})
    assert [e.record["value"] for e in seen.events] == [1.0, 2.0]


def test_adding_and_removing_children_fires_in_the_parent(engine):
    seen = CapturingListener()
    engine.listen("devices", "*", seen)
    engine.add_context("devices.d9")
    engine.remove_context("devices.d9")
    assert [(e.name, e.record["name"]) for e in seen.events] == [("childAdded", "d9"), ("childRemoved", "d9")]


def test_a_raising_listener_breaks_neither_the_firer_nor_other_listeners(engine, caplog):
    seen = CapturingListener()

    def broken(event):
        raise RuntimeError("boom")

    bad = engine.listen("devices.*", "measurement", broken)
    engine.listen("devices.*", "measurement", seen)
    event = engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 1})
    assert seen.events == [event]
    assert bad.failures == 1
    assert str(event.id) in caplog.text and "boom" in caplog.text


def test_cancel_stops_delivery_even_from_inside_the_listener(engine):
    seen = []

    def once(event):
        seen.append(event)
        subscription.cancel()

    subscription = engine.listen("devices.*", "measurement", once)
    for value in range(3):
        engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": value})
    assert len(seen) == 1 and not subscription.active


def test_listeners_added_inside_callbacks_see_later_events(engine):
    late = CapturingListener()

    def adder(event):
        if not late.events and event.record["value"] == 0:
            engine.listen("devices.*", "measurement", late)

    engine.listen("devices.*", "measurement", adder)
    engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 0})
    engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 1})
    assert [e.record["value"] for e in late.events] == [1.0]


def test_queued_delivery_keeps_firing_order(engine):
    seen = CapturingListener()
    engine.listen("devices.*", "measurement", seen, delivery="queued", queue_size=10)
    fired = [engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": v}).id for v in range(200)]
    assert [e.id for e in seen.wait_for(200)] == fired


def test_block_policy_makes_the_firer_wait_and_loses_nothing(engine):
    release = threading.Event()
    seen = []

    def slow(event):
        release.wait(5)
        seen.append(event.id)

    subscription = engine.listen(
        "devices.*", "measurement", slow, delivery="queued", queue_size=2, overflow="block"
    )
    done = threading.Event()
    fired = []

    def firer():
        for v in range(6):
            fired.append(engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": v}).id)
        done.set()

    threading.Thread(target=firer, daemon=True).start()
    assert not done.wait(0.3), "the firer should block on the full queue"
    release.set()
    assert done.wait(5)
    subscription.wait_idle(5)
    assert seen == fired and subscription.dropped == 0


def test_drop_policy_never_delays_the_firer_and_reports_the_gap(engine):
    release, entered = threading.Event(), threading.Event()
    seen, gaps = [], []

    def slow(event):
        entered.set()
        release.wait(5)
        seen.append(event.id)

    subscription = engine.listen(
        "devices.*", "measurement", slow, delivery="queued", queue_size=3, overflow="drop", on_gap=gaps.append
    )
    fast = CapturingListener()
    engine.listen("devices.*", "measurement", fast)
    started = time.monotonic()
    fired = [engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 0}).id]
    assert entered.wait(5)
    fired += [
        engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": v}).id for v in range(1, 50)
    ]
    assert time.monotonic() - started < 2
    assert len(fast.events) == 50
    release.set()
    subscription.wait_idle(5)
    assert seen == fired[:4]  # one in the listener, three queued
    assert subscription.dropped == 46
    assert gaps == [Gap(last_delivered_id=fired[3], last_dropped_id=fired[-1], dropped=46)]
    last = engine.fire("devices.plc7", "measurement", {"quantity": "t", "value": 99}).id
    subscription.wait_idle(5)
    assert seen[-1] == last and len(gaps) == 1


def test_fire_and_listen_from_many_threads(engine):
    seen = CapturingListener()
    engine.listen("devices.**", "measurement", seen)
    for n in range(4):
        engine.add_context(f"devices.t{n}")

    def work(n):
        for v in range(500):
            engine.fire(f"devices.t{n}", "measurement", {"quantity": "t", "value": v})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen.events) == 2000
    assert len({e.id for e in seen.events}) == 2000


def test_durable_subscriptions_get_persistent_events_after_commit_and_never_stall_the_writer(engine):
    release = threading.Event()
    seen = []

    def slow(event):
        release.wait(5)
        seen.append(event.id)

    engine.listen("devices.*", "error", slow, durable=True, delivery="queued", queue_size=1, overflow="block")
    fired = [engine.fire("devices.plc7", "error", durable=True).id for _ in range(5)]
    assert [e.id for e in stored(engine)][::-1] == fired  # all committed while the listener is stuck
    release.set()
    deadline = time.monotonic() + 5
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == fired


# -- deliver: the second half of the lifecycle, for events fired elsewhere ------


def another_node():
    """An engine with the same tree as the fixture's: what another node holds."""
    engine = engine_with(
        {"": STANDARD, "devices": STANDARD},
        templates={"device": DEVICE},
        child_templates={"devices": "device"},
    )
    engine.add_context("devices.plc7")
    return engine


def test_an_event_fired_elsewhere_is_delivered_like_a_local_fire_and_not_stored_again(engine):
    """Another engine (another node) fires; this one only delivers: same matching, same order."""
    elsewhere = another_node()
    every, filtered, queued = CapturingListener(), CapturingListener(), CapturingListener()
    engine.listen("devices.*", "*", every)
    engine.listen("devices.**", "measurement", filtered, filter="data.value > 20")
    engine.listen("devices.plc7", "error", queued, delivery="queued", durable=True)
    events = [
        elsewhere.fire("devices.plc7", "measurement", {"quantity": "t", "value": v}) for v in (10.0, 25.0)
    ]
    events.append(elsewhere.fire("devices.plc7", "error", author="linkserver"))
    for event in events:
        engine.deliver(event)
    assert [e.id for e in every.events] == [e.id for e in events]
    assert [e.data[0]["value"] for e in filtered.events] == [25.0]
    queued.wait_for(1)
    assert queued.events == [events[2]]
    assert engine.history.query(HistoryQuery()).events == ()  # stored by the node that fired it
    # the fire counters count the fires made here (count objects: the next value is the count)
    assert [next(c) for c in engine.fired["measurement"]] == [0] * len(Level)
    elsewhere.close()


def test_delivering_an_event_for_a_context_this_tree_lacks_names_it(engine):
    other = engine_with({"": STANDARD, "plant": DEVICE})
    event = other.fire("plant", "measurement", {"quantity": "t", "value": 1.0})
    with pytest.raises(ContextNotFound, match="plant"):
        engine.deliver(event)
    other.close()


def test_a_durable_subscription_waits_for_the_commit_it_is_given(engine):
    from concurrent.futures import Future

    got = CapturingListener()
    engine.listen("devices.plc7", "error", got, durable=True)
    elsewhere = another_node()
    fired = elsewhere.fire("devices.plc7", "error", author="linkserver")
    commit: Future = Future()
    engine.deliver(fired, commit=commit)
    assert got.events == []
    commit.set_result(fired)
    got.wait_for(1)
    assert got.events == [fired]
    elsewhere.close()
