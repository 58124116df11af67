"""``category`` in event definitions: read, derived when absent, refused with file:line when unknown."""

from __future__ import annotations

import textwrap

import pytest

from linkserver.core.categories import Category
from linkserver.core.errors import ConfigError
from linkserver.loading import load_contexts_text
from linkserver.loading.check import load_all

TEXT = """
contexts:
  things:
    events:
      login: {category: ActionEvent}
      stateChanged: {}
      reading: {category: %s}
"""


def test_category_is_read_and_derived_when_absent() -> None:
    catalog = load_contexts_text(textwrap.dedent(TEXT % "usageevent"), "c.yaml")
    (spec,) = catalog.contexts
    assert spec.definitions["login"].category is Category.ACTION
    assert spec.definitions["stateChanged"].category is Category.RESOURCE_STATE
    assert spec.definitions["reading"].category is Category.USAGE


def test_an_unknown_category_names_file_line_and_the_five() -> None:
    with pytest.raises(ConfigError) as caught:
        load_contexts_text(textwrap.dedent(TEXT % "Usage"), "c.yaml")
    assert caught.value.problems == [
        "c.yaml:7:27: unknown category 'Usage'; use one of ActionEvent, AlertEvent, UsageEvent, "
        "ResourceStateEvent, AsyncJobEvent"
    ]


def test_the_shipped_user_changes_are_action_events() -> None:
    _, catalog = load_all()
    user = catalog.templates["user"]
    assert {name: str(d.category) for name, d in user.items()} == {
        "login": "ActionEvent",
        "logout": "ActionEvent",
        "userAdded": "ActionEvent",
        "passwordChanged": "ActionEvent",
        "grantsChanged": "ActionEvent",
        "userRemoved": "ActionEvent",
    }
    assert catalog.templates["alert"]["alert"].category is Category.ALERT
