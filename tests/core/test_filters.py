"""The filter expression language: parsing, evaluation, errors, checks against formats."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from linkserver.core.errors import FilterError
from linkserver.core.events import Event
from linkserver.core.filters import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Compare,
    Filter,
    InList,
    Match,
    Not,
    Operand,
    Or,
    parse_filter,
)
from linkserver.core.formats import Field, TableFormat
from linkserver.core.levels import Level

NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def event(**changes: Any) -> Event:
    values: dict[str, Any] = {
        "id": 1,
        "context": "devices.plc7",
        "name": "login",
        "level": Level.INFO,
        "created": NOON,
        "expires": None,
        "author": None,
        "group": None,
        "data": ({"x": 1},),
    }
    values.update(changes)
    return Event(**values)


def data(**record: Any) -> Event:
    return event(data=(record,))


def matches(text: str, target: Event) -> bool:
    return parse_filter(text).matches(target)


def error_of(text: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    return info.value


# -- comparisons -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("level >= WARNING", True),
        ("level >= warning", True),
        ("level >= Warning", True),
        ("level > WARNING", False),
        ("level == 3", True),
        ("level > 2", True),
        ("level < 3", False),
        ("level <= 3", True),
        ("level != ERROR", True),
        ("level == 'warning'", True),
        ("level == none", False),
    ],
)
def test_level_compares_with_level_names_in_any_case_and_numbers(text: str, expected: bool) -> None:
    assert matches(text, event(level=Level.WARNING)) is expected


def test_level_literals_are_stored_as_levels() -> None:
    assert parse_filter("level >= warning").ast == Compare(Operand("level"), ">=", Level.WARNING)
    value = parse_filter("level > 2").ast.value  # type: ignore[union-attr]
    assert value is Level.INFO


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("==", [False, True, False]),
        ("!=", [True, False, True]),
        ("<", [True, False, False]),
        ("<=", [True, True, False]),
        (">", [False, False, True]),
        (">=", [False, True, True]),
    ],
)
def test_every_comparison_operator_orders_numbers(op: str, expected: list[bool]) -> None:
    flt = parse_filter(f"data.x {op} 5")
    assert [flt.matches(data(x=x)) for x in (4, 5, 6)] == expected


def test_integers_and_floats_compare_as_numbers() -> None:
    assert matches("data.x == 1.0", data(x=1))
    assert matches("data.x < 1.5", data(x=1))
    assert matches("data.x > -2.5e1", data(x=-3))


def test_strings_order_as_text() -> None:
    assert matches('name < "m"', event(name="login"))
    assert not matches('name >= "m"', event(name="login"))


@pytest.mark.parametrize(
    "text",
    [
        'context == "devices.plc7"',
        'name == "login"',
        'group == "alarms"',
        'author == "alice"',
        "id == 42",
        "id >= 42.0",
    ],
)
def test_event_attributes_are_operands(text: str) -> None:
    target = event(id=42, group="alarms", author="alice")
    assert matches(text, target)
    assert not matches(text, event(id=7, context="users.bob", name="logout", group="x", author="bob"))


def test_root_context_is_written_root() -> None:
    assert parse_filter('context == "root"').ast == Compare(Operand("context"), "==", "")
    assert matches('context == "root"', event(context=""))
    assert matches('context in ["root", "users"]', event(context=""))


def test_created_compares_with_iso_timestamps_converted_to_utc() -> None:
    flt = parse_filter('created >= "2024-05-01T14:00:00+02:00"')
    assert flt.ast == Compare(Operand("created"), ">=", NOON)
    assert flt.matches(event(created=NOON))
    assert not flt.matches(event(created=NOON - timedelta(seconds=1)))
    assert matches('created < "2024-05-02T00:00:00Z"', event(created=NOON))


def test_strings_accept_both_quotes_and_backslash_escapes() -> None:
    assert matches("name == 'it\\'s'", event(name="it's"))
    assert matches('name == "say \\"hi\\""', event(name='say "hi"'))
    assert matches('name == "a\\tb\\\\c\\u00e9"', event(name="a\tb\\cé"))


def test_unknown_escapes_keep_the_backslash_so_regexes_need_no_doubling() -> None:
    flt = parse_filter('data.s =~ "^\\d+$"')
    assert flt.ast == Match(Operand("data", ("s",)), "regex", "^\\d+$")
    assert flt.matches(data(s="123"))


# -- boolean logic -----------------------------------------------------------


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    flt = parse_filter('name == "a" or not name == "b" and level > 3')
    a = Compare(Operand("name"), "==", "a")
    b = Compare(Operand("name"), "==", "b")
    high = Compare(Operand("level"), ">", Level.WARNING)
    assert flt.ast == Or((a, And((Not(b), high))))
    assert flt.matches(event(name="a", level=Level.NONE))
    assert flt.matches(event(name="c", level=Level.ERROR))
    assert not flt.matches(event(name="b", level=Level.ERROR))


def test_parentheses_override_precedence() -> None:
    flt = parse_filter('(name == "a" or name == "b") and level > 3')
    assert not flt.matches(event(name="a", level=Level.NONE))
    assert flt.matches(event(name="b", level=Level.ERROR))


def test_keywords_are_case_insensitive() -> None:
    flt = parse_filter('NOT name == "a" AND level In [INFO] Or data.x == TRUE')
    assert flt.matches(event(name="b"))
    assert flt.matches(event(name="a", data=({"x": True},)))


def test_chains_of_and_and_or_are_flat() -> None:
    ast = parse_filter("id == 1 and (id == 2 and id == 3) and id == 4").ast
    assert isinstance(ast, And) and len(ast.items) == 4
    ast = parse_filter("id == 1 or id == 2 or id == 3").ast
    assert isinstance(ast, Or) and len(ast.items) == 3


def test_long_chains_evaluate_every_item() -> None:
    assert matches("id > 0 and id < 5 and id != 2", event(id=1))
    assert not matches("id > 0 and id < 5 and id != 1", event(id=1))
    assert matches("id == 7 or id == 8 or id == 1", event(id=1))
    assert not matches("id == 7 or id == 8 or id == 9", event(id=1))


def test_double_negation_is_identity() -> None:
    assert matches("not not id == 1", event(id=1))


# -- in / not in -------------------------------------------------------------


def test_in_and_not_in_test_membership() -> None:
    assert matches('name in ["login", "logout"]', event(name="login"))
    assert not matches('name not in ["login", "logout"]', event(name="login"))
    assert matches("level in [WARNING, error, 5]", event(level=Level.FATAL))
    assert matches("level not in [WARNING, ERROR]", event(level=Level.INFO))
    assert matches("data.x in [1, 2.5, 'a', null]", data(x=2.5))
    assert matches("data.x in [1, null]", data())


def test_in_an_empty_list_is_false_and_not_in_is_true() -> None:
    assert not matches("name in []", event())
    assert matches("name not in []", event())


def test_in_does_not_confuse_booleans_with_numbers() -> None:
    assert not matches("data.x in [1]", data(x=True))
    assert not matches("data.x in [true]", data(x=1))
    assert matches("data.x not in [1, 0]", data(x=False))


def test_in_on_unlisted_types_is_false() -> None:
    assert not matches("data.x in [1]", data(x=[1]))
    assert matches("data.x not in [1]", data(x={"a": 1}))


def test_in_compares_datetimes_with_timestamps() -> None:
    assert matches('data.t in ["2024-05-01T12:00:00Z"]', data(t=NOON))
    assert matches('created in ["2024-05-01T13:00:00+01:00"]', event(created=NOON))


# -- ~ and =~ ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "context", "expected"),
    [
        ("devices.*", "devices.plc7", True),
        ("devices.*", "devices", False),
        ("devices.*", "devices.plc7.io", False),
        ("devices.**", "devices", True),
        ("devices.**", "devices.plc7.io", True),
        ("**", "", True),
        ("root", "", True),
        ("users.*.devices.**", "users.bob.devices.x", True),
        ("devices.plc7", "devices.plc7", True),
    ],
)
def test_tilde_on_context_is_a_context_mask_match(mask: str, context: str, expected: bool) -> None:
    flt = parse_filter(f'context ~ "{mask}"')
    assert flt.ast == Match(Operand("context"), "mask", mask)
    assert flt.matches(event(context=context)) is expected


def test_tilde_on_other_strings_is_a_case_sensitive_glob() -> None:
    flt = parse_filter('name ~ "log*"')
    assert flt.ast == Match(Operand("name"), "glob", "log*")
    assert flt.matches(event(name="login"))
    assert not flt.matches(event(name="Login"))
    assert matches('data.s ~ "a?c"', data(s="abc"))
    assert not matches('data.s ~ "a?c"', data(s="abcd"))
    assert matches('author ~ "[ab]*"', event(author="bob"))


def test_regex_is_an_unanchored_search() -> None:
    flt = parse_filter('name =~ "og"')
    assert flt.ast == Match(Operand("name"), "regex", "og")
    assert flt.matches(event(name="login"))
    assert not matches('name =~ "^og"', event(name="login"))
    assert matches('context =~ "^devices\\.plc[0-9]+$"', event())


def test_matches_on_missing_null_or_non_string_values_are_false() -> None:
    assert not matches('author ~ "*"', event(author=None))
    assert not matches('data.s =~ ""', data())
    assert not matches('data.s ~ "*"', data(s=5))
    assert matches('not data.s ~ "*"', data(s=5))


# -- null and type semantics ---------------------------------------------------


def test_missing_field_and_null_value_are_null() -> None:
    for target in (data(), data(x=None), event(data=())):
        assert matches("data.x == null", target)
        assert not matches("data.x != null", target)
        assert not matches("data.x < 5", target)
        assert not matches("data.x >= 5", target)
        assert not matches('data.x == "a"', target)
        assert matches('data.x != "a"', target)
    assert matches("data.x != null", data(x=0))
    assert matches("group == null and author == NULL", event())


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("data.x < 5", {"x": "abc"}, False),
        ("data.x >= 5", {"x": "abc"}, False),
        ('data.x > "a"', {"x": 5}, False),
        ('data.x == "1"', {"x": 1}, False),
        ('data.x != "1"', {"x": 1}, True),
        ("data.x == 1", {"x": True}, False),
        ("data.x == true", {"x": 1}, False),
        ("data.x != true", {"x": 1}, True),
        ("data.x > 1", {"x": [5]}, False),
        ('data.x < "2024-05-02T00:00:00Z"', {"x": 5}, False),
        ("data.x == 1", {"x": float("nan")}, False),
        ("data.x < 1", {"x": float("nan")}, False),
    ],
)
def test_type_mismatches_are_false_and_never_raise(text: str, record: dict[str, Any], expected: bool) -> None:
    assert matches(text, data(**record)) is expected


def test_booleans_compare_by_equality() -> None:
    assert matches("data.ok == true", data(ok=True))
    assert matches("data.ok != true", data(ok=False))
    assert matches("data.ok == FALSE", data(ok=False))


def test_data_datetime_fields_compare_with_iso_strings_and_string_fields_with_text() -> None:
    assert matches('data.t > "2024-05-01T11:59:59Z"', data(t=NOON))
    assert matches('data.t == "2024-05-01T14:00:00+02:00"', data(t=NOON))
    assert not matches('data.t < "2024-05-01T11:59:59Z"', data(t=NOON))
    # the same literal against a string value compares the text
    assert matches('data.t == "2024-05-01T14:00:00+02:00"', data(t="2024-05-01T14:00:00+02:00"))
    # a naive datetime cannot be ordered against an aware one: not a match, no error
    assert not matches('data.t > "2024-05-01T11:59:59Z"', data(t=datetime(2024, 6, 1)))


def test_data_reads_the_first_record_only() -> None:
    target = event(data=({"x": 1}, {"x": 2}))
    assert matches("data.x == 1", target)
    assert not matches("data.x == 2", target)


def test_nested_table_field_reads_its_first_record() -> None:
    target = data(t=({"a": 1}, {"a": 2}))
    assert matches("data.t.a == 1", target)
    assert not matches("data.t.a == 2", target)
    assert matches("data.t.b == null", target)
    assert matches("data.t.a == 3", data(t={"a": 3}))
    assert matches("data.t.a == null", data(t=()))
    assert matches("data.t.a.b == null", data(t=({"a": 1},)))
    assert parse_filter("data.t.a == 1").ast == Compare(Operand("data", ("t", "a")), "==", 1)


def test_matches_never_raises_on_malformed_events() -> None:
    broken = [
        event(data=("not a record",)),
        event(level="high"),  # type: ignore[arg-type]
        event(created="yesterday"),  # type: ignore[arg-type]
        event(context=None),  # type: ignore[arg-type]
    ]
    for text in [
        "data.x == 1",
        "level > 2",
        'created > "2024-01-01T00:00:00Z"',
        'context ~ "**"',
        "level in [1]",
        'created in ["2024-01-01T00:00:00Z"]',
    ]:
        flt = parse_filter(text)
        for target in broken:
            assert flt.matches(target) in (True, False)
    assert parse_filter("level > 2").matches(None) is False  # type: ignore[arg-type]


# -- the Filter object --------------------------------------------------------


def test_filter_keeps_its_text_and_an_immutable_ast() -> None:
    flt = parse_filter("data.x == 1")
    assert flt.text == "data.x == 1"
    assert str(flt) == "data.x == 1"
    assert repr(flt) == "Filter('data.x == 1')"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        flt.ast.op = "!="  # type: ignore[union-attr,misc]
    with pytest.raises(AttributeError):
        flt.text = "other"  # type: ignore[misc]


def test_filters_with_the_same_meaning_are_equal_whatever_their_spacing() -> None:
    first = parse_filter('level>=WARNING and name=="a"')
    second = parse_filter("  level >= warning AND name == 'a' ")
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse_filter('level >= WARNING and name == "b"')
    assert isinstance(first, Filter)


def test_filter_survives_pickling() -> None:
    flt = parse_filter('data.s =~ "^a" and level >= WARNING')
    copy = pickle.loads(pickle.dumps(flt))
    assert copy == flt
    assert copy.matches(data(s="abc")) is False
    assert copy.matches(event(level=Level.ERROR, data=({"s": "abc"},))) is True


def test_filter_is_callable_like_matches() -> None:
    flt = parse_filter("id == 1")
    assert flt(event(id=1)) and not flt(event(id=2))


def test_data_fields_lists_top_level_field_names() -> None:
    flt = parse_filter('data.a == 1 or (data.b.c ~ "x" and not data.a in [2]) or level > 1')
    assert flt.data_fields() == frozenset({"a", "b"})
    assert parse_filter("level > 1").data_fields() == frozenset()


def test_in_list_ast_holds_converted_values() -> None:
    assert parse_filter("level not in [warning, 4]").ast == InList(
        Operand("level"), (Level.WARNING, Level.ERROR), negated=True
    )


# -- errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("lvl == 1", 1, "unknown operand 'lvl' (did you mean 'level'?)"),
        ("level == WARN", 10, "unknown level WARN (did you mean 'WARNING'?)"),
        ("level == 9", 10, "unknown level 9"),
        ("level == 2.5", 10, "level is compared with a level name or number"),
        ("level == true", 10, "level is compared with a level name or number"),
        ("level == null", 10, "level is never null"),
        ('name == "abc', 9, "unterminated string"),
        ("name == 'abc\\'", 9, "unterminated string"),
        ("", 1, "the filter expression is empty"),
        ('level >= WARNING name == "x"', 18, "expected 'and', 'or' or end of input after 'WARNING'"),
        ('data.x =~ "("', 11, "invalid regular expression"),
        ('level ~ "x"', 7, "'~' matches text, but level is not a string"),
        ('id =~ "1"', 4, "'=~' matches text, but id is not a string"),
        ('created ~ "2024*"', 9, "'~' matches text, but created is not a string"),
        ("level >=", 9, "expected a value after '>=', got end of input"),
        ("(level > 1", 11, "expected ')' to close the '(' at column 1, got end of input"),
        ("level > 1)", 10, "unmatched ')'"),
        ("data.x = 1", 8, "use '==' to compare"),
        ("data.x ! 1", 8, "use '!=' to compare"),
        ("data.x == 1 && id == 1", 13, "use 'and'"),
        ("name # 1", 6, "unexpected character '#'"),
        ("level > -", 9, "a minus sign must be followed by digits"),
        ("data.x == 12abc", 11, "'12abc' is not a number"),
        ("data.x == 1.5.2", 11, "'1.5.2' is not a number"),
        ('created > "2024-01-01"', 11, "has no timezone"),
        ('created > "yesterday"', 11, "is not an ISO-8601 date and time"),
        ("created > 5", 11, "created is compared with an ISO-8601 date and time"),
        ("name == 5", 9, "name is compared with a string in quotes, got number 5"),
        ("name == null", 9, "name is never null"),
        ('id == "1"', 7, "id is compared with a number"),
        ("data.x < null", 10, "'<' cannot order null"),
        ("data.x > true", 10, "'>' cannot order booleans"),
        ("name == login", 9, 'write text in quotes: "login"'),
        ("name == WARNING", 9, "level names can only be compared with level"),
        ('name in ["a",]', 14, "expected a value after ',', got ']'"),
        ('name in ["a" "b"]', 14, "expected ',' or ']' to close the list opened at column 9"),
        ('name in "a"', 9, "expected '[' to start a list after 'in'"),
        ('name == ["a"]', 9, "a list is only allowed after 'in' or 'not in'"),
        ('name not "a"', 10, "expected 'in' after 'not'"),
        ('name "a"', 6, "expected an operator"),
        ("name", 5, "expected an operator"),
        ("data == 1", 1, "'data' needs a field name"),
        ("data. == 1", 6, "expected a field name after '.'"),
        ("data.a..b == 1", 8, "expected a field name after '.'"),
        ("name.first == 1", 1, "'name' has no fields"),
        ('context ~ "devices.*x"', 11, "'*x' is neither a name"),
        ('context == "devices.*"', 12, 'to match a mask use context ~ "devices.*"'),
        ('name == "a" and', 16, "expected a field to test"),
        ("and id == 1", 1, "expected a field to test"),
        ("not", 4, "expected a field to test"),
        ("()", 2, "expected a field to test"),
        ("data.x ~ 5", 10, "expected a pattern in quotes"),
        ('name == "\\u12"', 10, "expected four hex digits"),
        ("data.x == 1e999", 11, "too large"),
    ],
)
def test_every_error_says_what_was_expected_at_its_column(text: str, column: int, message: str) -> None:
    error = error_of(text)
    assert error.column == column
    assert message in error.message
    assert error.expression == text
    assert str(error).startswith(f"column {column}: ")


def test_unknown_operand_error_points_at_its_column() -> None:
    error = error_of('level >= WARNING and lvl == "x"')
    assert error.column == 22
    assert "unknown operand 'lvl'" in error.message
    assert (
        "use one of context, name, level, group, author, category, created, id or data.FIELD" in error.message
    )


def test_error_message_shows_the_expression_and_a_caret() -> None:
    error = error_of("level >= ")
    assert str(error) == (
        "column 10: expected a value after '>=', got end of input\n  level >= \n           ^"
    )


def test_filter_error_is_a_value_error() -> None:
    assert isinstance(error_of("lvl == 1"), ValueError)


def test_whitespace_only_expression_is_empty() -> None:
    assert "empty" in error_of(" \t\n").message


def test_too_long_expression_is_rejected() -> None:
    text = "id == 1" + " or id == 1" * (MAX_LENGTH // 11)
    error = error_of(text)
    assert f"at most {MAX_LENGTH}" in error.message
    parse_filter("id == 1" + " " * (MAX_LENGTH - 7))


@pytest.mark.parametrize(("opening", "closing"), [("(", ")"), ("not ", ""), ("not (", ")")])
def test_nesting_deeper_than_the_limit_is_rejected(opening: str, closing: str) -> None:
    depth = MAX_DEPTH + 1
    error = error_of(opening * depth + "id == 1" + closing * depth)
    assert f"at most {MAX_DEPTH} levels" in error.message
    assert error.column is not None


def test_nesting_up_to_the_limit_is_accepted() -> None:
    flt = parse_filter("(" * MAX_DEPTH + "id == 1" + ")" * MAX_DEPTH)
    assert flt.matches(event(id=1))
    flt = parse_filter("not " * MAX_DEPTH + "id == 1")
    assert flt.matches(event(id=1))


def test_deeply_nested_regex_is_an_error_not_a_crash() -> None:
    error = error_of('data.x =~ "' + "(" * 1500 + ")" * 1500 + '"')
    assert "invalid regular expression" in error.message
    assert error.column == 11


def test_non_string_expression_is_rejected() -> None:
    with pytest.raises(FilterError):
        parse_filter(None)  # type: ignore[arg-type]
    with pytest.raises(FilterError):
        parse_filter(["id == 1"])  # type: ignore[arg-type]


# -- check against a table format ------------------------------------------------

FORMAT = TableFormat(
    fields=(
        Field(name="temperature", type="float"),
        Field(name="count", type="integer"),
        Field(name="username", type="string"),
        Field(name="ok", type="boolean"),
        Field(name="when", type="datetime"),
        Field(
            name="rows",
            type="table",
            format=TableFormat(
                fields=(Field(name="value", type="integer"),), min_records=0, max_records=None
            ),
        ),
    )
)


@pytest.mark.parametrize(
    "text",
    [
        "data.temperature > 20 and data.count == 3.0",
        'data.username ~ "a*" or data.username =~ "^r" or data.username in ["a", null]',
        "data.ok == true and data.when > '2024-01-01T00:00:00Z'",
        "data.rows.value >= 1",
        "data.temperature == null and data.rows.value != null",
        'level > 1 and name == "x"',
    ],
)
def test_check_accepts_fields_and_literals_that_fit_the_format(text: str) -> None:
    parse_filter(text).check(FORMAT)


def test_check_suggests_the_closest_field_name_for_a_typo() -> None:
    flt = parse_filter("level > 1 and data.temprature > 30")
    with pytest.raises(FilterError) as info:
        flt.check(FORMAT, where="devices.plc7/overheat")
    error = info.value
    assert error.message.startswith("devices.plc7/overheat: data.temprature is not a field")
    assert "did you mean 'data.temperature'?" in error.message
    assert "temperature, count, username" in error.message
    assert error.column == 20
    assert error.expression == flt.text


def test_check_names_unknown_fields_without_a_close_match() -> None:
    with pytest.raises(FilterError) as info:
        parse_filter("data.zzz == 1").check(FORMAT)
    assert "data.zzz is not a field" in info.value.message
    assert "did you mean" not in info.value.message


def test_check_suggests_nested_field_names() -> None:
    with pytest.raises(FilterError) as info:
        parse_filter("data.rows.valeu == 1").check(FORMAT)
    assert "did you mean 'data.rows.value'?" in info.value.message
    assert info.value.column == 11


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data.username > 5", "data.username is a string field; it cannot be compared with the number 5"),
        (
            'data.temperature == "hot"',
            "data.temperature is a float field; it cannot be compared with the string",
        ),
        ('data.count in [1, "two"]', "data.count is an integer field; it cannot be compared with the string"),
        ('data.ok == "yes"', "data.ok is a boolean field; it cannot be compared with the string 'yes'"),
        (
            "data.username == true",
            "data.username is a string field; it cannot be compared with the boolean true",
        ),
        (
            "data.count != false",
            "data.count is an integer field; it cannot be compared with the boolean false",
        ),
        ('data.when > "2024-01-01"', "data.when is a datetime field; it cannot be compared with the string"),
        ("data.when > 5", "data.when is a datetime field; it cannot be compared with the number 5"),
        ('data.count ~ "1*"', "'~' matches text, but data.count is an integer field"),
        ('data.when =~ "2024"', "'=~' matches text, but data.when is a datetime field"),
        ("data.rows == null", "data.rows is a table; compare one of its fields, e.g. data.rows.value"),
        ("data.count.x == 1", "data.count is an integer field; it has no sub-fields"),
    ],
)
def test_check_rejects_literals_and_matches_that_cannot_fit_the_field(text: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_filter(text).check(FORMAT)
    assert message in info.value.message
    assert info.value.column is not None


def test_check_without_where_has_no_prefix() -> None:
    with pytest.raises(FilterError) as info:
        parse_filter("data.x == 1").check(TableFormat())
    assert info.value.message.startswith("data.x is not a field of the event format (it has no fields)")
