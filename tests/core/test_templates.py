from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkserver.core.errors import InvalidDefinition, InvalidTemplate
from linkserver.core.events import Event
from linkserver.core.formats import Field, TableFormat
from linkserver.core.levels import Level
from linkserver.core.templates import compile_template, parse_template

UTC = UTC

LOGIN = TableFormat(
    fields=[
        Field(name="username", type="string"),
        Field(name="address", type="string", nullable=True),
        Field(name="status", type="integer", labels={1: "up", 2: "down"}),
        Field(name="value", type="float", default=0.0),
        Field(
            name="ports",
            type="table",
            format=TableFormat(fields=[Field(name="port", type="integer")], min_records=0, max_records=None),
        ),
    ]
)
CREATED = datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)


def event(
    data=({"username": "alice", "address": "10.0.0.7", "status": 2, "value": 21.25, "ports": []},), **kw
):
    values = dict(
        id=42,
        context="users.alice",
        name="loggedIn",
        level=Level.WARNING,
        created=CREATED,
        expires=None,
        author="alice",
        group=None,
        data=data,
    )
    values.update(kw)
    return Event(**values)


def test_fields_of_the_event_and_its_data_render():
    template = compile_template(
        "{data.username} logged in from {data.address} ({level}, {context}/{name} #{id})", LOGIN
    )
    assert template.render(event()) == "alice logged in from 10.0.0.7 (WARNING, users.alice/loggedIn #42)"


def test_labelled_values_render_their_label_and_unlabelled_ones_their_value():
    template = compile_template("link is {data.status}", LOGIN)
    assert template.render(event()) == "link is down"
    other = event(({"username": "a", "address": None, "status": 7, "value": 0.0, "ports": []},))
    assert template.render(other) == "link is 7"


def test_format_specs_apply_to_the_value_alone():
    template = compile_template("{data.value:.1f} at {created:%H:%M} root={context}", LOGIN)
    assert template.render(event(context="")) == "21.2 at 03:04 root=root"


def test_a_default_is_shown_where_the_value_cannot_be():
    template = compile_template(
        "{data.username} from {data.address|the local shell} {data.value:.0f|?}", LOGIN
    )
    null = event(({"username": "bob", "address": None, "status": 1, "value": 2.0, "ports": []},))
    assert template.render(null) == "bob from the local shell 2"
    assert template.render_strict(null) == "bob from the local shell 2"
    assert template.render_strict(event(data=())) is None


def test_nested_fields_read_the_first_record_and_braces_escape():
    template = compile_template("{{port}} {data.ports.port}", LOGIN)
    with_ports = event(
        ({"username": "a", "address": None, "status": 1, "value": 0.0, "ports": [{"port": 22}]},)
    )
    assert template.render(with_ports) == "{port} 22"


def test_a_value_that_cannot_render_is_a_visible_placeholder():
    template = compile_template("{data.username} from {data.address} port {data.ports.port}", LOGIN)
    null = event(({"username": "bob", "address": None, "status": 1, "value": 0.0, "ports": []},))
    assert template.render(null) == "bob from <data.address?> port <data.ports.port?>"
    assert template.render(event(data=())) == "<data.username?> from <data.address?> port <data.ports.port?>"
    assert template.render_strict(null) is None
    assert template.render(object()) == "<data.username?> from <data.address?> port <data.ports.port?>"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        (
            "{data.usrname} in",
            "data.usrname is not a field of the event format; did you mean 'data.username'?",
            7,
        ),
        (
            "{data.ports.prt}",
            "data.ports.prt is not a field of the event format; did you mean 'data.ports.port'?",
            13,
        ),
        ("{data.username.x}", "data.username is a string field; it has no sub-fields", 7),
        ("{data.ports}", "data.ports is a table; show one of its fields, e.g. data.ports.port", 2),
        ("{data.value:d}", "format spec 'd' of {data.value} does not apply to float values", 2),
        ("{data.status:03d}", "format spec '03d' of {data.status} does not apply to text values", 2),
    ],
)
def test_placeholders_are_checked_against_the_format(text, message, column):
    with pytest.raises(InvalidTemplate) as caught:
        compile_template(text, LOGIN, where="message of event 'loggedIn'")
    assert caught.value.message.startswith("message of event 'loggedIn': ")
    assert message in caught.value.message
    assert caught.value.column == column


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("{", "'{' is never closed", 1),
        ("a } b", "'}' without '{'", 3),
        ("x {} y", "empty placeholder", 3),
        ("{lvl}", "unknown placeholder {lvl}; did you mean {level}?", 2),
        ("{data}", "{data} is the whole data table", 2),
        ("{level.name}", "level has no parts", 2),
        ("{data.a-b}", "invalid field name 'a-b'", 7),
        ("{id:%H}", "format spec '%H' of {id} does not apply to int values", 2),
        ("{a {b}", "'{' inside a placeholder", 1),
    ],
)
def test_malformed_templates_say_what_and_where(text, message, column):
    with pytest.raises(InvalidTemplate, match=message) as caught:
        parse_template(text)
    assert caught.value.column == column
    assert str(caught.value).startswith(f"column {column}: ")


def test_no_attribute_or_index_access_into_objects():
    for text in ("{data.username.__class__}", "{created.__class__}", "{data[0]}", "{name!r}"):
        with pytest.raises(InvalidTemplate):
            compile_template(text, LOGIN)


def test_templates_compare_by_text():
    assert compile_template("{name}") == compile_template("{name}", LOGIN)
    assert len({compile_template("{name}"), compile_template("{name}")}) == 1


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_invalid_template(text):
    try:
        template = compile_template(text)
    except InvalidTemplate:
        return
    assert isinstance(template.render(event()), str)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            dict(type="float", labels={1: "one"}),
            "labels apply to integer and string fields, not float fields",
        ),
        (dict(type="boolean", labels={True: "on"}), "not boolean fields"),
        (dict(type="integer", labels={"1": "one"}), "labelled value '1' is not an integer"),
        (dict(type="string", labels={1: "one"}), "labelled value 1 is not a string; quote it: '1'"),
        (dict(type="integer", labels={1: "x", 2: "x"}), "label 'x' is given to both 1 and 2"),
        (dict(type="integer", labels={1: ""}), "the label of 1 must be non-empty text"),
        (dict(type="integer", labels={}), "the labels mapping is empty"),
        (dict(type="integer", max=5, labels={9: "nine"}), "the labelled value 9 is not a valid value"),
        (dict(type="string", labels={"a": "b", "b": "c"}), "label 'b' of 'a' is also a labelled value"),
    ],
)
def test_inconsistent_labels_are_refused(field, message):
    with pytest.raises(InvalidDefinition, match=message):
        Field(name="status", **field)


def test_a_field_finds_the_label_of_a_value_of_its_own_type():
    field = Field(name="status", type="integer", labels={1: "up", 2: "down"})
    assert field.labels == ((1, "up"), (2, "down"))
    assert (field.label(2), field.label(3), field.label(True), field.label("2")) == ("down", None, None, None)
