from linkserver.core.catalog import DefinitionSet
from linkserver.core.definitions import EventDefinition
from linkserver.core.paths import compile_mask
from linkserver.core.permissions import Grants, Principal
from linkserver.core.subscriptions import SubscriptionIndex, SubscriptionSpec
from linkserver.core.tree import ContextTree

MEASUREMENT = EventDefinition(name="measurement")
HIDDEN = EventDefinition(name="debug", hidden=True)
SECRET = EventDefinition(name="secret", permissions="admin")
DEVICE = DefinitionSet([MEASUREMENT, HIDDEN, SECRET], name="device")


class CountingSpec(SubscriptionSpec):
    checks = 0

    def wants(self, path, definition):
        CountingSpec.checks += 1
        return super().wants(path, definition)


class Sub:
    def __init__(self, mask, event="*", principal=None):
        self.spec = CountingSpec(mask=compile_mask(mask), event=event, principal=principal)


def make_tree(devices=100):
    tree = ContextTree(templates={"device": DEVICE})
    tree.add("devices", child_definitions="device")
    for n in range(devices):
        tree.add(f"devices.d{n}")
    return tree


def test_an_event_only_looks_at_subscriptions_of_its_own_context():
    tree = make_tree(1000)
    index = SubscriptionIndex(tree)
    subs = [Sub(f"devices.d{n}", "measurement") for n in range(1000)]
    for sub in subs:
        index.add(sub)
    CountingSpec.checks = 0
    assert index.targets("devices.d7", MEASUREMENT) == (subs[7],)
    assert CountingSpec.checks == 1  # not 1000
    CountingSpec.checks = 0
    for _ in range(100):
        index.targets("devices.d7", MEASUREMENT)
    assert CountingSpec.checks == 0  # cached


def test_wildcard_masks_are_matched_once_per_context_not_per_event():
    tree = make_tree(10)
    index = SubscriptionIndex(tree)
    wildcard = Sub("devices.*")
    index.add(wildcard)
    tree.add("devices.late")
    index.context_added("devices.late")
    assert index.targets("devices.late", MEASUREMENT) == (wildcard,)
    assert index.targets("devices", MEASUREMENT) == ()
    index.context_removed(("devices.late",))
    assert index.targets("devices.late", MEASUREMENT) == ()


def test_exact_subscriptions_wait_for_their_context():
    tree = make_tree(0)
    index = SubscriptionIndex(tree)
    sub = Sub("devices.future", "measurement")
    index.add(sub)
    tree.add("devices.future")
    index.context_added("devices.future")
    assert index.targets("devices.future", MEASUREMENT) == (sub,)


def test_star_skips_hidden_and_permissions_filter_targets():
    tree = make_tree(1)
    index = SubscriptionIndex(tree)
    star = Sub("devices.*")
    named = Sub("devices.*", "debug")
    observer = Sub("**", principal=Principal(name="o", grants=Grants({"**": "observer"})))
    for sub in (star, named, observer):
        index.add(sub)
    assert index.targets("devices.d0", HIDDEN) == (named,)
    assert set(index.targets("devices.d0", SECRET)) == {star}
    assert set(index.targets("devices.d0", MEASUREMENT)) == {star, observer}


def test_receiving_needs_observer_even_when_the_definition_asks_for_none():
    tree = ContextTree(
        templates={"open": DefinitionSet([EventDefinition(name="public", permissions="none")])}
    )
    tree.add("lobby", definitions="open")
    index = SubscriptionIndex(tree)
    nobody = Sub("**", principal=Principal(name="n", grants=Grants({"users.**": "admin"})))
    index.add(nobody)
    assert index.targets("lobby", tree.definition("lobby", "public")) == ()


def test_removed_subscriptions_are_gone_from_every_path():
    tree = make_tree(5)
    index = SubscriptionIndex(tree)
    sub = Sub("devices.**")
    index.add(sub)
    assert index.targets("devices.d3", MEASUREMENT) == (sub,)
    index.remove(sub)
    assert index.targets("devices.d3", MEASUREMENT) == ()
    assert len(index) == 0
