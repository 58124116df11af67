from datetime import timedelta

import pytest

from linkserver.core.definitions import EventDefinition
from linkserver.core.errors import InvalidName
from linkserver.core.expiration import DEFAULT_EXPIRATION, ExpirationRule, ExpirationTable
from linkserver.core.levels import InvalidLevel, Permission
from linkserver.core.permissions import Grants


def test_most_specific_grant_wins():
    grants = Grants(
        {
            "**": "observer",
            "users.**": "none",
            "users.*": "operator",
            "users.alice": "admin",
            "users.*.devices.**": "manager",
        }
    )
    assert grants.level_for("") is Permission.OBSERVER
    assert grants.level_for("users") is Permission.NONE
    assert grants.level_for("users.bob") is Permission.OPERATOR
    assert grants.level_for("users.alice") is Permission.ADMIN
    assert grants.level_for("users.bob.devices.d1") is Permission.MANAGER
    assert grants.level_for("devices.plc7") is Permission.OBSERVER


def test_no_grant_means_no_permission():
    assert Grants({"devices.*": "operator"}).level_for("alerts.a1") is Permission.NONE


def test_bad_grants_are_rejected():
    with pytest.raises(InvalidName):
        Grants({"users.-": "admin"})
    with pytest.raises(InvalidLevel):
        Grants({"users": "god"})


PERSISTENT = EventDefinition(name="measurement", persistent=True, expiration=timedelta(days=3))
TRANSIENT = EventDefinition(name="measurement")


def test_expiration_rule_beats_definition_beats_default():
    table = ExpirationTable(
        [
            ExpirationRule(mask="devices.**", event="measurement", expiration=timedelta(hours=6)),
            ExpirationRule(mask="devices.*", event="*", expiration=timedelta(hours=1)),
        ]
    )
    # devices.* is more specific than devices.** even though ** names the event.
    assert table.lifetime("devices.plc7", PERSISTENT) == timedelta(hours=1)
    assert table.lifetime("devices.plc7.io", PERSISTENT) == timedelta(hours=6)
    assert table.lifetime("users.bob", PERSISTENT) == timedelta(days=3)
    no_expiration = EventDefinition(name="x", persistent=True)
    assert table.lifetime("users.bob", no_expiration) == DEFAULT_EXPIRATION


def test_named_event_beats_star_on_the_same_mask():
    table = ExpirationTable(
        [
            ExpirationRule(mask="**", event="*", expiration=timedelta(days=1)),
            ExpirationRule(mask="**", event="measurement", expiration=timedelta(days=2)),
        ]
    )
    assert table.lifetime("a", PERSISTENT) == timedelta(days=2)


def test_expiration_table_never_makes_an_event_persistent():
    table = ExpirationTable([ExpirationRule(mask="**", event="*", expiration=timedelta(days=1))])
    assert table.lifetime("devices.plc7", TRANSIENT) is None
