"""Declarative configuration sections: a section declared as one class is read, checked and
reported at file:line:column like the shipped ones, with no other change to the reader."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from linkserver.core.errors import ConfigError
from linkserver.loading import load_config_text
from linkserver.loading.entries import Entries
from linkserver.loading.problems import Location
from linkserver.loading.sections import (
    SECTIONS,
    Reading,
    duration,
    integer,
    items,
    keys_of,
    located,
    mask,
    name,
    section,
    setting,
)


@attrs.frozen(kw_only=True)
class Pump:
    """A pump (an item of the test section ``pumps:``)."""

    name: str = setting(read=name("pump name"), required=True)
    watch: str = setting("**", mask())
    interval: timedelta = setting(timedelta(seconds=1), duration())
    high: int = setting(10, integer(minimum=1), key="limits.high")
    low: int = setting(1, integer(minimum=0), key="limits.low")
    location: Location | None = located()

    def check(self, entries: Entries) -> None:
        if self.low >= self.high:
            entries.error(
                entries.get("limits"), f"'low' in {entries.where} must be below 'high' ({self.high})"
            )


@attrs.frozen(kw_only=True)
class Site:
    """A mapping section with a default for every key."""

    title: str = setting("plant", lambda entries, key, reading: entries.text(key))
    shifts: int = setting(3, integer(minimum=1, maximum=4))


@pytest.fixture
def sections():
    before = dict(SECTIONS)
    section(
        "pumps",
        read=items(
            where="pump {index}",
            rename=("name", "pump {!r}"),
            unique=("name",),
            duplicate="pump {name!r} is already defined at {first}",
            duplicate_at="name",
        ),
    )(Pump)
    section("site")(Site)
    yield
    SECTIONS.clear()
    SECTIONS.update(before)


AT = "/etc/linkserver/linkserver.yaml:"


def read(text: str):
    return load_config_text(textwrap.dedent(text).lstrip("\n"), Path("/etc/linkserver/linkserver.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        read(text)
    return info.value.problems


def test_a_declared_section_is_read_into_its_class(sections) -> None:
    config = read(
        """
        pumps:
          - name: p1
            watch: devices.*
            limits: {high: 20}
          - name: p2
        site:
          shifts: 2
        """
    )
    p1, p2 = config.sections["pumps"]
    assert (p1.name, p1.watch, p1.high, p1.low, p1.interval) == (
        "p1",
        "devices.*",
        20,
        1,
        timedelta(seconds=1),
    )
    assert str(p1.location) == f"{AT}2:5" and p2.name == "p2"
    assert config.sections["site"] == Site(title="plant", shifts=2)


def test_an_absent_section_reads_as_its_defaults(sections) -> None:
    config = read("server: {}\n")
    assert config.sections["pumps"] == () and config.sections["site"] == Site()


def test_every_problem_of_a_declared_section_is_at_its_file_line_column(sections) -> None:
    assert problems(
        """
        pumps:
          - name: p1
            watch: devices.***
            interval: soon
          - name: bad name
          - name: p3
            limits: {high: 2, low: 5, lwo: 1}
          - watch: '**'
          - name: p5
          - name: p5
          - ~
        site:
          shifts: 9
          shfits: 1
        """
    ) == [
        f"{AT}3:12: invalid context mask 'devices.***': '***' is neither a name, '*' nor '**'; "
        "a mask is like devices.*, users.** or **",
        f"{AT}4:15: 'interval' in pump 'p1' must be a positive duration such as 10d, 6h, 30m, "
        "45s or 500ms, got the string 'soon'",
        f"{AT}5:11: invalid pump name 'bad name': use letters, digits and '_' only",
        f"{AT}7:13: 'low' in pump 'p3' must be below 'high' (2)",
        f"{AT}7:31: unknown key 'lwo' in 'limits' in pump 'p3'; did you mean 'low'?",
        f"{AT}8:5: pump 4 has no 'name'; add it",
        f"{AT}10:11: pump 'p5' is already defined at line 9, column 5",
        f"{AT}11:5: pump 7 must be a mapping, got null",
        f"{AT}13:11: 'shifts' in 'site' must be an integer from 1 to 4, got the integer 9",
        f"{AT}14:3: unknown key 'shfits' in 'site'; did you mean 'shifts'?",
    ]


def test_an_undeclared_section_is_an_unknown_key(sections) -> None:
    assert problems("pump: []\n") == [
        f"{AT}1:1: unknown key 'pump' in the configuration; did you mean 'pumps'?"
    ]


def test_keys_of_a_section_class_are_its_settings() -> None:
    assert keys_of(Pump) == ("name", "watch", "interval", "limits")


def test_a_section_name_is_declared_once(sections) -> None:
    with pytest.raises(ValueError, match="declared twice"):
        section("site")(Pump)


def test_reading_knows_relative_paths() -> None:
    assert Reading(None, Path("/etc/linkserver")).absolute("../data") == Path("/etc/data")  # type: ignore[arg-type]
