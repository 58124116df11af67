"""Categories: every definition has one, derived when not given; filters read them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from linkserver.core.categories import CATEGORY_NAMES, Category, InvalidCategory, derive_category
from linkserver.core.definitions import EventDefinition
from linkserver.core.events import Event
from linkserver.core.filters import parse_filter
from linkserver.core.levels import Level


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (EventDefinition(name="stateChanged"), Category.RESOURCE_STATE),
        (EventDefinition(name="jobStarted"), Category.ASYNC_JOB),
        (EventDefinition(name="action"), Category.ACTION),
        (EventDefinition(name="alert"), Category.ALERT),
        (EventDefinition(name="overheated", persistent=True, requires_acknowledgement=True), Category.ALERT),
        (EventDefinition(name="measurement"), Category.USAGE),
    ],
)
def test_a_definition_without_category_gets_one_derived_from_what_it_is(
    definition: EventDefinition, expected: Category
) -> None:
    assert definition.category is expected


def test_a_definition_may_name_its_category_in_any_case() -> None:
    assert EventDefinition(name="login", category="actionevent").category is Category.ACTION
    assert EventDefinition(name="login", category=Category.ALERT).category == "AlertEvent"


def test_an_unknown_category_is_refused_naming_the_five() -> None:
    with pytest.raises(InvalidCategory) as caught:
        EventDefinition(name="x", category="Alerts")
    assert str(caught.value) == f"unknown category 'Alerts'; use one of {', '.join(CATEGORY_NAMES)}"


def test_derive_category_is_what_definitions_use() -> None:
    assert derive_category("x", group="alerts") is Category.ALERT


def test_filters_compare_the_events_category() -> None:
    event = Event(1, "devices.d1", "stateChanged", Level.INFO, datetime(2026, 1, 1, tzinfo=UTC), None,
                  None, None, (), category="ResourceStateEvent")  # fmt: skip
    assert parse_filter('category == "ResourceStateEvent"').matches(event)
    assert not parse_filter('category == "ActionEvent"').matches(event)
    assert parse_filter('category ~ "Resource*"').matches(event)
    old = Event(2, "devices.d1", "stateChanged", Level.INFO, datetime(2026, 1, 1, tzinfo=UTC), None,
                None, None, ())  # fmt: skip
    assert parse_filter("category == null").matches(old)
