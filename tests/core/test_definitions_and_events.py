import threading
from datetime import UTC, datetime, timedelta

import pytest

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import InvalidDefinition
from linkserver.core.events import EPOCH_MS, Event, IdGenerator, first_id_at, id_time
from linkserver.core.levels import Level, Permission


def test_definition_defaults_and_parsing():
    definition = EventDefinition(
        name="login", level="notice", permissions="operator", persistent=True, expiration=timedelta(days=1)
    )
    assert definition.level is Level.NOTICE
    assert definition.permissions is Permission.OPERATOR
    assert definition.fire_permissions is Permission.OPERATOR


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "invalid event name"),
        ({"name": "x", "expiration": timedelta(days=1)}, "expiration is set but the event is not persistent"),
        ({"name": "x", "persistent": True, "expiration": timedelta(0)}, "expiration must be positive"),
        ({"name": "x", "requires_acknowledgement": True}, "only persistent events can be acknowledged"),
        ({"name": "x", "persistent": "yes"}, "persistent must be true or false"),
    ],
)
def test_inconsistent_definitions_are_rejected(kwargs, message):
    with pytest.raises(InvalidDefinition, match=message):
        EventDefinition(**kwargs)


def test_ids_are_unique_and_increasing_across_threads():
    generator = IdGenerator(node_id=5)
    ids: list[int] = []
    lock = threading.Lock()

    def take():
        mine = [generator.next()[0] for _ in range(5000)]
        with lock:
            ids.extend(mine)
        assert mine == sorted(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 20000
    assert all(((i >> 12) & 1023) == 5 for i in ids)


def test_ids_stay_increasing_when_the_clock_steps_back_or_a_millisecond_overflows():
    now = [EPOCH_MS + 1_000_000]
    generator = IdGenerator(node_id=1, clock_ms=lambda: now[0])
    first = [generator.next()[0] for _ in range(5000)]  # more than 4096 in one millisecond
    now[0] -= 500
    later = generator.next()[0]
    assert first == sorted(first) and len(set(first)) == 5000
    assert later > first[-1]


def test_ids_of_different_nodes_never_collide():
    clock = lambda: EPOCH_MS + 42  # noqa: E731
    a = {IdGenerator(1, clock).next()[0] for _ in range(10)}
    b = {IdGenerator(2, clock).next()[0] for _ in range(10)}
    assert not a & b


def test_id_encodes_its_creation_time():
    event_id, ms = IdGenerator(0).next()
    assert id_time(event_id) == datetime.fromtimestamp(ms / 1000, UTC)
    assert first_id_at(id_time(event_id)) <= event_id


@pytest.mark.parametrize("bad", [-1, 1024, True, "1"])
def test_node_id_must_fit_in_ten_bits(bad):
    with pytest.raises(ValueError, match="node id"):
        IdGenerator(bad)


def test_event_marshal_round_trip():
    created = datetime(2026, 5, 1, tzinfo=UTC)
    event = Event(
        id=7,
        context="devices.plc7",
        name="error",
        level=Level.ERROR,
        created=created,
        expires=created + timedelta(days=1),
        author="sim",
        group="faults",
        data=({"code": 3, "at": created},),
    )
    raw = event.marshal()
    assert raw["data"] == [{"code": 3, "at": "2026-05-01T00:00:00+00:00"}]
    back = Event.unmarshal(raw)
    assert back.id == 7 and back.level is Level.ERROR and back.expires == event.expires
