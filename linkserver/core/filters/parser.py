"""Recursive-descent parser: tokens to :mod:`~linkserver.core.filters.ast` nodes.

Grammar (keywords are case-insensitive)::

    expression := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" or ")" | comparison
    comparison := operand ("==" | "!=" | "<" | "<=" | ">" | ">=") value
                | operand ["not"] "in" "[" [value ("," value)*] "]"
                | operand ("~" | "=~") string
    operand    := context | name | level | group | author | category | created | id | data.FIELD[.SUB...]

Literals are converted and type-checked against their operand here, once:
a filter that parses is safe to evaluate on any event.
"""

from __future__ import annotations

import difflib
import re

from linkserver.core.errors import FilterError, InvalidName
from linkserver.core.filters.ast import (
    COMPARISONS,
    OPERAND_NAMES,
    ORDERINGS,
    And,
    Compare,
    InList,
    Match,
    Node,
    Not,
    Operand,
    Or,
    Value,
    parse_timestamp,
)
from linkserver.core.filters.lexer import END, NUMBER, OP, PUNCT, STRING, WORD, Token, describe, tokenize
from linkserver.core.levels import InvalidLevel, Level
from linkserver.core.paths import ROOT, ROOT_NAME, compile_mask, parse_path

MAX_DEPTH = 64
"""The deepest nesting of parentheses and 'not' accepted."""

_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_STRING_OPERANDS = frozenset({"context", "name", "group", "author", "category", "data"})
_NULLABLE_OPERANDS = frozenset({"group", "author", "category", "data"})
_LEVEL_NAMES = ", ".join(level.name for level in Level)
_OPERAND_HELP = "context, name, level, group, author, category, created, id or data.FIELD"
_OPERATOR_HELP = "==, !=, <, <=, >, >=, ~, =~, in or not in"


def parse(text: str) -> Node:
    """The AST of ``text``. Raises FilterError with the column of the first problem."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    # -- token helpers -----------------------------------------------------

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        if token.kind != END:
            self.pos += 1
        return token

    def is_keyword(self, token: Token, keyword: str) -> bool:
        return token.kind == WORD and token.text.lower() == keyword

    def error(self, message: str, token: Token) -> FilterError:
        return FilterError(message, self.text, token.column)

    def expected(self, what: str, token: Token, *, say_after: bool = True) -> FilterError:
        """'expected X after 'previous', got Y' at ``token``."""
        index = self.tokens.index(token) if token.kind != END else len(self.tokens) - 1
        after = f" after {_quote(self.tokens[index - 1])}" if index > 0 and say_after else ""
        return self.error(f"expected {what}{after}, got {describe(token)}", token)

    # -- grammar -----------------------------------------------------------

    def parse(self) -> Node:
        if self.peek().kind == END:
            raise self.error(
                "the filter expression is empty; write a comparison such as level >= WARNING", self.peek()
            )
        node = self.parse_or()
        token = self.peek()
        if token.kind != END:
            if token.kind == PUNCT and token.text == ")":
                raise self.error("unmatched ')': no '(' is open here", token)
            raise self.expected("'and', 'or' or end of input", token)
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.is_keyword(self.peek(), "or"):
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(_flatten(Or, items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while self.is_keyword(self.peek(), "and"):
            self.advance()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(_flatten(And, items))

    def parse_unary(self) -> Node:
        token = self.peek()
        if self.is_keyword(token, "not"):
            self.advance()
            self.enter(token)
            item = self.parse_unary()
            self.depth -= 1
            return Not(item)
        if token.kind == PUNCT and token.text == "(":
            self.advance()
            self.enter(token)
            node = self.parse_or()
            closing = self.peek()
            if not (closing.kind == PUNCT and closing.text == ")"):
                what = f"')' to close the '(' at column {token.column}"
                raise self.expected(what, closing, say_after=False)
            self.advance()
            self.depth -= 1
            return node
        return self.parse_comparison()

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                f"the expression nests too deeply: at most {MAX_DEPTH} levels of parentheses and 'not'",
                token,
            )

    def parse_comparison(self) -> Node:
        operand = self.parse_operand()
        token = self.advance()
        if token.kind == OP and token.text in COMPARISONS:
            value = self.parse_value(operand, token, ordering=token.text in ORDERINGS)
            return Compare(operand, token.text, value)
        if token.kind == OP:  # ~ or =~
            return self.parse_match(operand, token)
        negated = False
        if self.is_keyword(token, "not"):
            negated = True
            token = self.advance()
            if not self.is_keyword(token, "in"):
                raise self.expected("'in'", token)
        if self.is_keyword(token, "in"):
            return InList(operand, self.parse_list(operand), negated)
        raise self.expected(f"an operator ({_OPERATOR_HELP})", token)

    def parse_operand(self) -> Operand:
        token = self.advance()
        if token.kind != WORD or token.text.lower() in _KEYWORDS:
            raise self.expected(f"a field to test ({_OPERAND_HELP})", token)
        head, *path = token.text.split(".")
        if head not in OPERAND_NAMES:
            hint = _suggest(head.lower(), OPERAND_NAMES)
            raise self.error(f"unknown operand '{head}'{hint}; use one of {_OPERAND_HELP}", token)
        if head == "data":
            if not path:
                raise self.error("'data' needs a field name, e.g. data.temperature", token)
            offset = token.column + len("data.")
            for segment in path:
                if not segment:
                    raise FilterError(f"expected a field name after '.' in '{token.text}'", self.text, offset)
                offset += len(segment) + 1
        elif path:
            raise self.error(f"'{head}' has no fields; only data has (data.FIELD)", token)
        return Operand(head, tuple(path), column=token.column)

    def parse_value(self, operand: Operand, after: Token, *, ordering: bool) -> Value:
        token = self.advance()
        value: Value
        if token.kind == STRING or token.kind == NUMBER:
            value = token.value
        elif token.kind == WORD and token.text.lower() in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[token.text.lower()]
        elif token.kind == WORD and operand.name == "level" and token.text.lower() not in _KEYWORDS:
            return self.level(token.text, token)
        elif token.kind == WORD and token.text.lower() not in _KEYWORDS:
            if token.text.upper() in Level.__members__:
                hint = "; level names can only be compared with level"
            else:
                hint = f'; write text in quotes: "{token.text}"'
            raise self.error(f"expected a value after {_quote(after)}, got {describe(token)}{hint}", token)
        elif token.kind == PUNCT and token.text == "[":
            raise self.error("a list is only allowed after 'in' or 'not in'", token)
        else:
            raise self.expected("a value", token)
        if ordering and (value is None or isinstance(value, bool)):
            what = "null" if value is None else "booleans"
            raise self.error(
                f"'{after.text}' cannot order {what}; use == or != with {token.text.lower()}", token
            )
        return self.convert(operand, value, token)

    def convert(self, operand: Operand, value: Value, token: Token) -> Value:
        """``value`` as the operand compares it, or FilterError if they cannot compare."""
        name = operand.name
        if value is None:
            if name in _NULLABLE_OPERANDS:
                return None
            raise self.error(f"{name} is never null; compare it with {_expects(name)}", token)
        if name == "level":
            if isinstance(value, (bool, float)) or not isinstance(value, (int, str)):
                raise self.error(f"level is compared with {_expects(name)}, got {describe(token)}", token)
            return self.level(value, token)
        if name == "created":
            if not isinstance(value, str):
                raise self.error(f"created is compared with {_expects(name)}, got {describe(token)}", token)
            try:
                return parse_timestamp(value)
            except ValueError as exc:
                raise self.error(str(exc), token) from None
        if name == "id":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(f"id is compared with {_expects(name)}, got {describe(token)}", token)
            return value
        if name == "data":
            return value
        if not isinstance(value, str):
            raise self.error(f"{name} is compared with {_expects(name)}, got {describe(token)}", token)
        if name == "context":
            return self.context_path(value, token)
        return value

    def level(self, value: int | str, token: Token) -> Level:
        try:
            return Level(Level.parse(value))
        except InvalidLevel:
            hint = _suggest(token.text.upper(), list(Level.__members__))
            raise self.error(f"unknown level {token.text}{hint}; use one of {_LEVEL_NAMES}", token) from None

    def context_path(self, value: str, token: Token) -> str:
        if value == ROOT_NAME:
            return ROOT
        try:
            return parse_path(value)
        except InvalidName:
            hint = f'; to match a mask use context ~ "{value}"' if "*" in value else ""
            raise self.error(f"{value!r} is not a context path{hint}", token) from None

    def parse_list(self, operand: Operand) -> tuple[Value, ...]:
        opening = self.advance()
        if not (opening.kind == PUNCT and opening.text == "["):
            raise self.expected("'[' to start a list", opening)
        values: list[Value] = []
        if self.peek().kind == PUNCT and self.peek().text == "]":
            self.advance()
            return ()
        while True:
            values.append(self.parse_value(operand, self.tokens[self.pos - 1], ordering=False))
            token = self.advance()
            if token.kind == PUNCT and token.text == "]":
                return tuple(values)
            if not (token.kind == PUNCT and token.text == ","):
                raise self.expected(
                    f"',' or ']' to close the list opened at column {opening.column}", token, say_after=False
                )

    def parse_match(self, operand: Operand, op: Token) -> Match:
        if operand.name not in _STRING_OPERANDS:
            raise self.error(f"'{op.text}' matches text, but {operand.name} is not a string", op)
        token = self.advance()
        if token.kind != STRING:
            raise self.expected("a pattern in quotes", token)
        pattern = token.value
        if op.text == "=~":
            try:
                re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                if isinstance(exc, RecursionError):
                    detail = "it nests too deeply"
                else:
                    detail = getattr(exc, "msg", None) or str(exc)
                shown = token.text if len(token.text) <= 40 else token.text[:37] + "..."
                raise self.error(f"invalid regular expression {shown}: {detail}", token) from None
            return Match(operand, "regex", pattern)
        if operand.name == "context":
            try:
                compile_mask(pattern)
            except InvalidName as exc:
                raise self.error(str(exc), token) from None
            return Match(operand, "mask", pattern)
        return Match(operand, "glob", pattern)


def _flatten(kind: type[And] | type[Or], items: list[Node]) -> tuple[Node, ...]:
    out: list[Node] = []
    for item in items:
        if isinstance(item, kind):
            out.extend(item.items)
        else:
            out.append(item)
    return tuple(out)


def _quote(token: Token) -> str:
    return f"'{token.text}'" if token.kind != STRING else token.text


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _expects(name: str) -> str:
    return {
        "level": f"a level name or number ({_LEVEL_NAMES})",
        "created": 'an ISO-8601 date and time with a timezone in quotes, e.g. "2024-05-01T12:00:00Z"',
        "id": "a number",
    }.get(name, "a string in quotes")
