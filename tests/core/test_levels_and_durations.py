from datetime import timedelta

import pytest

from linkserver.core.durations import InvalidDuration, format_duration, parse_duration
from linkserver.core.levels import InvalidLevel, Level, Permission


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("warning", Level.WARNING),
        ("FATAL", Level.FATAL),
        (2, Level.INFO),
        ("0", Level.NONE),
        (Level.ERROR, Level.ERROR),
    ],
)
def test_levels_parse_from_names_in_any_case_and_numbers(value, expected):
    assert Level.parse(value) is expected


@pytest.mark.parametrize("bad", ["warn", 6, -1, True, None, 2.0])
def test_unknown_levels_name_the_valid_ones(bad):
    with pytest.raises(InvalidLevel, match="NONE=0"):
        Level.parse(bad)


def test_permission_levels_are_ordered():
    assert Permission.NONE < Permission.OBSERVER < Permission.OPERATOR < Permission.MANAGER
    assert Permission.MANAGER < Permission.ENGINEER < Permission.ADMIN
    assert Permission.parse("Engineer") is Permission.ENGINEER


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10d", 864000),
        ("6h", 21600),
        ("30m", 1800),
        ("45s", 45),
        ("1d12h", 129600),
        ("250ms", 0.25),
        (90, 90),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "10",
        "10x",
        "d",
        "1d 2",
        -5,
        "1.5.2h",
        None,
        True,
        float("nan"),
        float("inf"),
        "99999999999d",
        10**30,
    ],
)
def test_bad_durations_say_how_to_write_one(bad):
    with pytest.raises(InvalidDuration):
        parse_duration(bad)


def test_format_duration_round_trips():
    assert format_duration(timedelta(days=1, hours=12)) == "1d12h"
    assert parse_duration(format_duration(timedelta(seconds=3725))) == timedelta(seconds=3725)
