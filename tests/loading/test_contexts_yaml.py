"""Context files -> Catalog: what loads, and every error at its file:line:column."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkserver.core.catalog import EMPTY_DEFINITIONS
from linkserver.core.errors import ConfigError
from linkserver.core.formats import FieldType
from linkserver.core.levels import Level, Permission
from linkserver.core.tree import ContextTree
from linkserver.loading import load_contexts, load_contexts_text
from linkserver.loading.formats import EVENT_KEYS, FIELD_KEYS, FORMAT_KEYS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages name files relative to the working directory: contexts/x.yaml."""
    monkeypatch.chdir(tmp_path)


def write(name: str, text: str) -> Path:
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(*paths: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_contexts(list(paths))
    return info.value.problems


# -- what loads ---------------------------------------------------------------


def test_full_schema_loads_into_definitions_and_formats() -> None:
    path = write(
        "contexts/devices.yaml",
        """
        formats:
          stateChange:
            description: old and new state
            fields:
              - name: old
                type: string
                allowed: [on, off]
              - name: new
                type: string
                allowed: ["on", "off"]
                default: "off"
        templates:
          device:
            description: one device
            events:
              stateChanged:
                description: changed
                help: read this
                level: warning
                persistent: true
                expiration: 30d
                permissions: operator
                fire_permissions: engineer
                group: state
                hidden: true
                requires_acknowledgement: true
                format: stateChange
              reading:
                format:
                  min_records: 0
                  max_records: null
                  fields:
                    - {name: value, type: float, min: -1.5, max: 100}
                    - {name: at, type: datetime, nullable: true}
                    - name: extra
                      format:
                        fields: [{name: code, type: integer, default: 3}]
        contexts:
          devices:
            description: all devices
            child_templates: [device]
        """,
    )
    catalog = load_contexts([path])
    changed = catalog.templates["device"]["stateChanged"]
    assert changed.level is Level.WARNING
    assert changed.persistent and changed.hidden and changed.requires_acknowledgement
    assert changed.expiration == timedelta(days=30)
    assert changed.permissions is Permission.OPERATOR
    assert changed.fire_permissions is Permission.ENGINEER
    assert changed.group == "state" and changed.help == "read this"
    old, new = changed.format.fields
    assert old.allowed == ("on", "off")  # booleans are true and false only
    assert new.allowed == ("on", "off") and new.default == "off"
    reading = catalog.templates["device"]["reading"].format
    assert (reading.min_records, reading.max_records) == (0, None)
    assert reading.field("extra").type is FieldType.TABLE
    assert reading.build([{"value": 2, "extra": [{}]}])[0]["extra"] == ({"code": 3},)
    (devices,) = catalog.contexts
    assert devices.path == "devices" and devices.description == "all devices"
    assert devices.definitions is EMPTY_DEFINITIONS
    assert devices.child_definitions is catalog.templates["device"]


def test_empty_files_and_comment_only_files_are_fine() -> None:
    files = [write("a.yaml", ""), write("b.yaml", "# nothing yet\n"), write("c.yaml", "---\n")]
    catalog = load_contexts(files)
    assert catalog.templates == {} and catalog.contexts == ()


def test_formats_and_templates_are_global_across_files() -> None:
    write("contexts/a.yaml", "formats:\n  pair:\n    fields: [{name: x, type: integer}]\n")
    write(
        "contexts/b.yaml",
        """
        templates:
          t:
            events:
              e: {format: pair}
        contexts:
          here: {templates: [t]}
        """,
    )
    catalog = load_contexts([Path("contexts")])
    assert catalog.contexts[0].definitions["e"].format.field_names == ("x",)


def test_named_format_is_built_once_and_shared() -> None:
    catalog = load_contexts_text(
        """
        formats:
          f: {fields: [{name: x}]}
        templates:
          a: {events: {e1: {format: f}, e2: {format: f}}}
        """
    )
    assert catalog.templates["a"]["e1"].format is catalog.templates["a"]["e2"].format


def test_include_merges_other_templates_and_diamonds_are_fine() -> None:
    catalog = load_contexts_text(
        """
        templates:
          base: {events: {ping: {}}}
          left: {include: [base], events: {l: {}}}
          right: {include: base, events: {r: {}}}
          both: {include: [left, right], events: {own: {}}}
        """
    )
    assert sorted(catalog.templates["both"]) == ["l", "own", "ping", "r"]
    assert catalog.templates["both"].name == "both"


def test_contexts_are_ordered_parents_first() -> None:
    catalog = load_contexts_text(
        """
        contexts:
          devices.plc7.sensor: {}
          users: {}
          root: {}
          devices: {}
        """
    )
    assert [spec.path for spec in catalog.contexts] == ["", "users", "devices", "devices.plc7.sensor"]


def test_yaml_anchors_and_merge_keys_work() -> None:
    catalog = load_contexts_text(
        """
        templates:
          t:
            events:
              a: &common {persistent: true, expiration: 2d, level: ERROR}
              b:
                <<: *common
                level: NOTICE
        """
    )
    a, b = catalog.templates["t"]["a"], catalog.templates["t"]["b"]
    assert a.level is Level.ERROR and b.level is Level.NOTICE
    assert b.persistent and b.expiration == timedelta(days=2)


# -- shared definition sets ------------------------------------------------------


def test_contexts_with_the_same_templates_share_one_definition_set() -> None:
    catalog = load_contexts_text(
        """
        templates:
          standard: {events: {childAdded: {}}}
          device: {events: {connected: {}}}
        contexts:
          a: {templates: [standard, device], child_templates: [standard, device]}
          b: {templates: [standard, device]}
          c: {child_templates: [standard, device], events: {own: {}}}
          d: {templates: [standard]}
        """
    )
    a, b, c, d = catalog.contexts
    assert a.definitions is b.definitions is a.child_definitions is c.child_definitions
    assert sorted(a.definitions) == ["childAdded", "connected"]
    assert a.definitions.name == "standard+device"
    assert d.definitions is catalog.templates["standard"]
    assert c.definitions is not a.definitions and sorted(c.definitions) == ["own"]


def test_a_thousand_devices_added_at_run_time_share_one_definition_set() -> None:
    catalog = load_contexts([REPO / "contexts"])
    tree = ContextTree.from_catalog(catalog)
    for number in range(1000):
        tree.add(f"devices.d{number}")
    sets = {id(tree.get(f"devices.d{number}").definitions) for number in range(1000)}
    assert len(sets) == 1
    assert tree.get("devices.d1").definitions is tree.get("devices").child_definitions
    assert "measurement" in tree.get("devices.d999").definitions


# -- the shipped standard tree ------------------------------------------------------


def test_shipped_contexts_load_and_build_the_standard_tree() -> None:
    catalog = load_contexts([REPO / "contexts"])
    tree = ContextTree.from_catalog(catalog)
    assert sorted(tree.paths()) == ["", "alerts", "devices", "users", "vms"]
    for path in ("", "alerts", "devices", "users"):
        assert {"childAdded", "childRemoved"} <= set(tree.get(path).definitions)
    root = tree.get("")
    assert root.definition("serverStarted").expiration == timedelta(days=30)
    assert root.definition("serverStopping").persistent
    user = tree.add("users.alice").definitions
    assert user["login"].level is Level.NOTICE and user["login"].persistent
    alert = tree.add("alerts.overheating").definition("alert")
    assert alert.requires_acknowledgement and alert.level is Level.WARNING
    assert alert.expiration == timedelta(days=90)
    device = tree.add("devices.plc7")
    assert device.definition("error").level is Level.ERROR
    assert device.definition("stateChanged").format.build({"old": "offline", "new": "online"})
    assert device.definition("measurement").format.build([{"quantity": "temperature", "value": 21}])
    for definition in [*root.definitions.values(), *user.values(), *device.definitions.values()]:
        assert definition.description and definition.help, definition.name
        for field in definition.format.fields:
            assert field.description, (definition.name, field.name)


# -- errors: one per kind, at file:line:column ------------------------------------------


def test_yaml_syntax_error_names_the_mark() -> None:
    path = write("contexts/bad.yaml", "contexts:\n  devices: {description: x\n  users: {}\n")
    (message,) = problems(path)
    assert message.startswith("contexts/bad.yaml:3:8: invalid YAML: ")
    assert "flow mapping" in message


def test_unknown_key_suggests_the_closest_one() -> None:
    path = write(
        "contexts/devices.yaml",
        """
        templates:
          device:
            events:
              connected:
                persistant: true
                colour: red
        """,
    )
    assert problems(path) == [
        "contexts/devices.yaml:5:9: unknown key 'persistant' in event 'connected'; "
        "did you mean 'persistent'?",
        "contexts/devices.yaml:6:9: unknown key 'colour' in event 'connected'; valid keys: "
        + ", ".join(sorted(EVENT_KEYS)),
    ]


def test_unknown_keys_everywhere() -> None:
    path = write(
        "c.yaml",
        """
        format:
          x: {}
        formats:
          f: {feilds: []}
          g: {fields: [{name: a, typ: integer}]}
        templates:
          t: {events: {}, inclde: []}
        contexts:
          root: {childtemplates: []}
        """,
    )
    assert problems(path) == [
        "c.yaml:1:1: unknown key 'format' in a context file; did you mean 'formats'?",
        "c.yaml:4:7: unknown key 'feilds' in format 'f'; did you mean 'fields'?",
        "c.yaml:5:26: unknown key 'typ' in field 'a'; did you mean 'type'?",
        "c.yaml:7:19: unknown key 'inclde' in template 't'; did you mean 'include'?",
        "c.yaml:9:10: unknown key 'childtemplates' in context 'root'; did you mean 'child_templates'?",
    ]
    assert sorted(FORMAT_KEYS) and sorted(FIELD_KEYS)


def test_wrong_types_are_reported_at_the_value() -> None:
    path = write(
        "c.yaml",
        """
        formats:
          f:
            min_records: -1
            max_records: 0
            fields:
              - {name: a, nullable: "no", min: ten, pattern: 5}
        templates:
          t:
            events:
              e:
                persistent: "yes"
                description: 42
                hidden: 1
                group: [a]
        contexts: [root]
        """,
    )
    assert problems(path) == [
        "c.yaml:3:18: 'min_records' in format 'f' must be an integer >= 0, got the integer -1",
        "c.yaml:4:18: 'max_records' in format 'f' must be an integer >= 1 or null, got the integer 0",
        "c.yaml:6:29: 'nullable' in field 'a' must be true or false, got the string 'no'",
        "c.yaml:6:40: 'min' in field 'a' must be a number, got the string 'ten'",
        "c.yaml:6:54: 'pattern' in field 'a' must be a string, got the integer 5",
        "c.yaml:11:21: 'persistent' in event 'e' must be true or false, got the string 'yes'",
        "c.yaml:12:22: 'description' in event 'e' must be a string, got the integer 42",
        "c.yaml:13:17: 'hidden' in event 'e' must be true or false, got the integer 1",
        "c.yaml:14:16: 'group' in event 'e' must be a string, got a list",
        "c.yaml:15:11: 'contexts' must be a mapping, got a list",
    ]


def test_duplicate_keys_name_both_places() -> None:
    path = write(
        "c.yaml",
        """
        templates:
          t:
            events:
              e:
                level: INFO
                level: ERROR
              e: {}
        """,
    )
    assert problems(path) == [
        "c.yaml:6:9: duplicate key 'level' in event 'e'; the first is at line 5, column 9",
        "c.yaml:7:7: duplicate key 'e' in the events of template 't'; the first is at line 4, column 7",
    ]


def test_invalid_names() -> None:
    path = write(
        "c.yaml",
        """
        formats:
          bad-format: {}
          f:
            fields: [{name: "has space"}, {type: string}]
        templates:
          "t.x": {}
          t:
            events:
              bad-event: {}
        contexts:
          devices..plc: {}
          root.x: {}
        """,
    )
    assert problems(path) == [
        "c.yaml:2:3: invalid format name 'bad-format': use letters, digits and '_' only",
        "c.yaml:4:21: invalid field name 'has space': use letters, digits and '_' only",
        "c.yaml:4:35: field 2 of format 'f' has no 'name'; add it",
        "c.yaml:6:3: invalid template name 't.x': use letters, digits and '_' only",
        "c.yaml:9:7: invalid event name 'bad-event': use letters, digits and '_' only",
        "c.yaml:11:3: invalid context path 'devices..plc': '' is not a name "
        "(letters, digits and '_' separated by single dots)",
        "c.yaml:12:3: invalid context path 'root.x': 'root' is reserved for the root context",
    ]


def test_duplicate_field_names_in_one_format() -> None:
    path = write(
        "c.yaml",
        """
        formats:
          f:
            fields:
              - name: old
              - name: new
              - name: old
                type: integer
        """,
    )
    assert problems(path) == [
        "c.yaml:6:15: field 'old' is defined twice in format 'f'; the first is at line 4, column 15",
    ]


def test_names_defined_twice_across_files_name_both_places() -> None:
    a = write("contexts/a.yaml", "formats: {f: {}}\ntemplates: {t: {}}\ncontexts: {devices: {}}\n")
    b = write("contexts/b.yaml", "formats:\n  f: {}\ntemplates:\n  t: {}\ncontexts:\n  devices: {}\n")
    assert problems(a, b) == [
        "contexts/b.yaml:2:3: format 'f' is already defined at contexts/a.yaml:1:11; rename one of them",
        "contexts/b.yaml:4:3: template 't' is already defined at contexts/a.yaml:2:13; "
        "define it once or rename one of them",
        "contexts/b.yaml:6:3: context 'devices' is already defined at contexts/a.yaml:3:12; "
        "define it once or rename one of them",
    ]


def test_event_in_a_template_and_in_the_context_names_both_places() -> None:
    write("contexts/standard.yaml", "templates:\n  standard:\n    events:\n      childAdded: {}\n")
    write(
        "contexts/devices.yaml",
        """
        contexts:
          devices:
            templates: [standard]
            events:
              childAdded: {level: ERROR}
        """,
    )
    assert problems(Path("contexts")) == [
        "contexts/devices.yaml:5:7: event 'childAdded' is already defined by template 'standard' at "
        "contexts/standard.yaml:4:7; rename this one or remove it from one place",
    ]


def test_identical_events_from_two_templates_are_fine_different_ones_are_not() -> None:
    path = write(
        "c.yaml",
        """
        templates:
          a: {events: {ping: {level: INFO}, x: {}}}
          b: {events: {ping: {level: INFO}}}
          c: {events: {ping: {level: ERROR}}}
        contexts:
          same: {templates: [a, b]}
          differ: {templates: [a, c]}
        """,
    )
    assert problems(path) == [
        "c.yaml:7:27: event 'ping' of template 'c' (c.yaml:4:16) differs from the one of template 'a' "
        "(c.yaml:2:16); an event can have one definition only: rename one or make them identical",
    ]


def test_references_to_undefined_formats_and_templates() -> None:
    path = write(
        "c.yaml",
        """
        formats:
          stateChange: {}
        templates:
          device:
            include: [standart]
            events:
              e: {format: stateChnge}
              f: {format: [x]}
        contexts:
          devices:
            templates: [device, device]
            child_templates: [nothing]
        """,
    )
    assert problems(path) == [
        "c.yaml:5:15: unknown template 'standart' in template 'device'; known templates: device",
        "c.yaml:7:19: unknown format 'stateChnge' in event 'e'; did you mean 'stateChange'?",
        "c.yaml:8:19: the format of event 'f' must be a format name or a mapping with 'fields', got a list",
        "c.yaml:11:25: template 'device' is listed twice in 'templates' of context 'devices'",
        "c.yaml:12:23: unknown template 'nothing' in context 'devices'; known templates: device",
    ]


def test_include_cycles_and_formats_containing_themselves() -> None:
    path = write(
        "c.yaml",
        """
        formats:
          a: {fields: [{name: b, format: b}]}
          b: {fields: [{name: a, format: a}]}
          self: &me {fields: [{name: me, format: *me}]}
        templates:
          x: {include: [y]}
          y: {include: [z]}
          z: {include: [x]}
        """,
    )
    assert problems(path) == [
        "c.yaml:3:34: format 'a' contains itself (a -> b -> a); a table cannot nest itself",
        "c.yaml:4:9: the format of field 'me' contains itself through an alias; a table cannot nest itself",
        "c.yaml:8:17: templates include each other (x -> y -> z -> x); remove one of the includes",
    ]


def test_invalid_levels_permissions_and_durations() -> None:
    path = write(
        "c.yaml",
        """
        templates:
          t:
            events:
              e:
                level: LOUD
                permissions: boss
                fire_permissions: 9
                persistent: true
                expiration: 10 days
        """,
    )
    assert problems(path) == [
        "c.yaml:5:16: 'level' in event 'e' must be one of NONE, NOTICE, INFO, WARNING, ERROR, FATAL, "
        "got the string 'LOUD'",
        "c.yaml:6:22: 'permissions' in event 'e' must be one of none, observer, operator, manager, "
        "engineer, admin, got the string 'boss'",
        "c.yaml:7:27: 'fire_permissions' in event 'e' must be one of none, observer, operator, manager, "
        "engineer, admin, got the integer 9",
        "c.yaml:9:21: 'expiration' in event 'e' must be a positive duration such as 10d, 6h, 30m, 45s "
        "or 500ms, got the string '10 days'",
    ]


def test_inconsistent_definitions_are_reported_at_the_offending_key() -> None:
    path = write(
        "c.yaml",
        """
        templates:
          t:
            events:
              a:
                expiration: 30d
              b:
                persistent: false
                requires_acknowledgement: true
              c:
                format:
                  min_records: 3
                  max_records: 2
                  fields:
                    - name: count
                      type: integer
                      default: many
                    - {name: n, type: integer, min: 5, max: 1}
                    - {name: p, type: integer, pattern: "x"}
                    - {name: s, allowed: [a, b], default: c}
                    - {name: z, default: null}
        """,
    )
    assert problems(path) == [
        "c.yaml:5:9: event 'a': expiration is set but the event is not persistent; "
        "remove the expiration or set persistent: true",
        "c.yaml:8:9: event 'b': only persistent events can be acknowledged; set persistent: true",
        "c.yaml:12:11: the format of event 'c': max_records 2 is less than min_records 3",
        "c.yaml:16:15: field 'count': default 'many' is invalid: expected an integer, got a string 'many'",
        "c.yaml:17:40: field 'n': min 5 is greater than max 1",
        "c.yaml:18:40: field 'p': pattern applies to strings only, not integer",
        "c.yaml:19:42: field 's': default 'c' is invalid: 'c' is not one of the allowed values: 'a', 'b'",
        "c.yaml:20:25: field 'z': default is null but the field is not nullable",
    ]


def test_record_count_inconsistency_is_reported_at_the_format() -> None:
    path = write("c.yaml", "formats:\n  f:\n    min_records: 3\n    max_records: 2\n")
    assert problems(path) == ["c.yaml:4:5: format 'f': max_records 2 is less than min_records 3"]


def test_every_problem_of_every_file_is_reported_at_once() -> None:
    a = write("contexts/a.yaml", "templates:\n  t:\n    events:\n      e: {persistent: maybe}\n")
    b = write("contexts/b.yaml", "contexts:\n  x:\n    templates: [t, u]\n    colour: 1\n")
    c = write("contexts/c.yaml", "contexts: {y: {\n")
    found = problems(a, b, c)
    assert [line.split(":")[0] for line in found] == [
        "contexts/a.yaml",
        "contexts/b.yaml",
        "contexts/b.yaml",
        "contexts/c.yaml",
    ]


def test_bad_scalars_and_unsafe_tags_are_errors_not_crashes() -> None:
    path = write(
        "c.yaml",
        """
        formats:
          f:
            fields:
              - {name: when, type: datetime, default: 2024-02-30 10:00:00}
              - {name: code, default: !!python/object/apply:os.system [echo hi]}
              - {name: loop, type: table, format: {fields: [{name: x}]}, default: &r [*r]}
        """,
    )
    found = problems(path)
    assert found[0].startswith("c.yaml:4:47: invalid value '2024-02-30 10:00:00': ")
    assert found[1] == (
        "c.yaml:5:31: unsupported tag 'tag:yaml.org,2002:python/object/apply:os.system'; remove it"
    )
    assert found[2] == "c.yaml:6:75: this alias refers to a value that contains it; remove the recursion"


def test_missing_file_and_bad_encoding_are_reported() -> None:
    Path("latin.yaml").write_bytes("description: caf\xe9\n".encode("latin-1"))
    assert problems(Path("missing.yaml"), Path("latin.yaml")) == [
        "missing.yaml:1:1: file not found",
        "latin.yaml:1:1: the file is not UTF-8 text (byte 16); save it as UTF-8",
    ]


# -- anything else goes: loads or ConfigError --------------------------------------------

_KEYS = st.sampled_from(
    [
        *EVENT_KEYS,
        *FIELD_KEYS,
        *FORMAT_KEYS,
        "formats",
        "templates",
        "contexts",
        "events",
        "include",
        "child_templates",
        "root",
        "devices",
        "x",
        "<<",
        "fields",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["INFO", "admin", "10d", "0s", "string", "table", "root", "devices.*", "[a-z]", "*"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)
_YAMLISH = st.one_of(
    st.dictionaries(_KEYS, _VALUES, max_size=4).map(lambda v: yaml.safe_dump(v, sort_keys=False)),
    st.text(alphabet="ab:- \n\t{}[],&*!|>'\"#%@`?<", max_size=60),
    st.text(max_size=40),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_YAMLISH)
def test_any_yaml_ish_text_loads_or_raises_config_error(text: str) -> None:
    try:
        load_contexts_text(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert all(problem.startswith("fuzz.yaml:") for problem in exc.problems)


def test_a_file_with_many_problems_reports_every_one_in_one_pass() -> None:
    """No problem hides another: a bad name, a bad value or a bad sibling never stops the checks."""
    path = write(
        "c.yaml",
        """
        templates:
          t:
            events:
              bad-name:
                level: LOUD
                expiration: 5d
              quiet:
                persistent: false
                expiration: 30d
                colour: red
                format:
                  description: [not, text]
                  min_records: 5
                  max_records: 1
                  fields:
                    - {name: n, type: integer, min: 5, max: 1, nullable: maybe}
                    - {name: bad-field, type: integer, min: 2, max: 1}
                    - {name: k, type: colour, default: 3}
              acked:
                persistent: maybe
                requires_acknowledgement: true
                expiration: -1d
        """,
    )
    assert problems(path) == [
        "c.yaml:4:7: invalid event name 'bad-name': use letters, digits and '_' only",
        "c.yaml:5:16: 'level' in event 'bad-name' must be one of NONE, NOTICE, INFO, WARNING, ERROR, "
        "FATAL, got the string 'LOUD'",
        "c.yaml:6:9: event 'bad-name': expiration is set but the event is not persistent; "
        "remove the expiration or set persistent: true",
        "c.yaml:9:9: event 'quiet': expiration is set but the event is not persistent; "
        "remove the expiration or set persistent: true",
        "c.yaml:10:9: unknown key 'colour' in event 'quiet'; valid keys: " + ", ".join(sorted(EVENT_KEYS)),
        "c.yaml:12:24: 'description' in the format of event 'quiet' must be a string, got a list",
        "c.yaml:14:11: the format of event 'quiet': max_records 1 is less than min_records 5",
        "c.yaml:16:40: field 'n': min 5 is greater than max 1",
        "c.yaml:16:66: 'nullable' in field 'n' must be true or false, got the string 'maybe'",
        "c.yaml:17:22: invalid field name 'bad-field': use letters, digits and '_' only",
        "c.yaml:17:48: field 'bad-field': min 2 is greater than max 1",
        "c.yaml:18:31: 'type' in field 'k' must be one of string, integer, float, boolean, datetime, "
        "table, got the string 'colour'",
        "c.yaml:20:21: 'persistent' in event 'acked' must be true or false, got the string 'maybe'",
        "c.yaml:22:21: 'expiration' in event 'acked' must be a positive duration such as 10d, 6h, 30m, "
        "45s or 500ms, got the string '-1d'",
    ]


def test_a_control_character_is_reported_at_its_column_after_non_ascii_text() -> None:
    path = write("c.yaml", 'contexts:\n  x: {description: "Müller ± Söhne \x07"}\n')
    assert problems(path) == [
        "c.yaml:2:36: invalid YAML: character '\\x07' is not allowed; control characters are not allowed"
    ]
