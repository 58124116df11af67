"""Split a filter expression into tokens.

The lexer knows only the shapes of tokens: strings, numbers, words (dotted
names such as ``data.x.y`` and keywords), punctuation and operators. Every
token carries its 1-based column; every lexical error is a
:class:`~linkserver.core.errors.FilterError` pointing at the offending column.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from linkserver.core.errors import FilterError

MAX_LENGTH = 4096
"""The longest expression accepted, in characters."""

# Token kinds.
STRING = "string"
NUMBER = "number"
WORD = "word"
OP = "op"  # == != < <= > >= ~ =~
PUNCT = "punct"  # ( ) [ ] ,
END = "end"

_OPERATORS = ("==", "!=", "<=", ">=", "=~", "<", ">", "~")
_PUNCTUATION = "()[],"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]*)*", re.ASCII)
_NUMBER = re.compile(r"-?(?:\d+\.\d+|\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD_CHAR = re.compile(r"[A-Za-z0-9_.]", re.ASCII)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


@attrs.frozen
class Token:
    kind: str
    text: str  # the source text of the token
    value: Any  # decoded string, int or float; the text for words and operators
    column: int  # 1-based


def describe(token: Token) -> str:
    """How a token is named in error messages."""
    if token.kind == END:
        return "end of input"
    if token.kind == STRING:
        return f"string {token.text}"
    if token.kind == NUMBER:
        return f"number {token.text}"
    if token.kind == WORD:
        keyword = token.text.lower() in ("and", "or", "not", "in")
        return f"'{token.text}'" if keyword else f"name '{token.text}'"
    return f"'{token.text}'"


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an END token. Raises FilterError."""
    if not isinstance(text, str):
        raise FilterError(f"a filter expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FilterError(
            f"the filter expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed"
        )
    tokens: list[Token] = []
    pos = 0
    length = len(text)
    while pos < length:
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
            continue
        column = pos + 1
        if char in "\"'":
            value, end = _read_string(text, pos)
            tokens.append(Token(STRING, text[pos:end], value, column))
            pos = end
            continue
        if char in _PUNCTUATION:
            tokens.append(Token(PUNCT, char, char, column))
            pos += 1
            continue
        match = _NUMBER.match(text, pos)
        if match is not None and (char != "-" or match.end() > pos + 1):
            end = match.end()
            if end < length and _WORD_CHAR.match(text, end):
                bad = re.compile(r"[-+A-Za-z0-9_.]*", re.ASCII).match(text, pos)
                assert bad is not None
                raise FilterError(f"{bad.group()!r} is not a number", text, column)
            raw = match.group()
            number: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(number, float) and number in (float("inf"), float("-inf")):
                raise FilterError(f"the number {raw} is too large", text, column)
            tokens.append(Token(NUMBER, raw, number, column))
            pos = end
            continue
        match = _WORD.match(text, pos)
        if match is not None:
            word = match.group()
            tokens.append(Token(WORD, word, word, column))
            pos = match.end()
            continue
        for operator in _OPERATORS:
            if text.startswith(operator, pos):
                tokens.append(Token(OP, operator, operator, column))
                pos += len(operator)
                break
        else:
            raise FilterError(_unexpected(text, pos), text, column)
    tokens.append(Token(END, "", None, length + 1))
    return tokens


def _unexpected(text: str, pos: int) -> str:
    char = text[pos]
    if char == "=":
        return "unexpected '='; use '==' to compare or '=~' for a regular expression"
    if char == "!":
        return "unexpected '!'; use '!=' to compare or 'not' to negate"
    if char == "&":
        return "unexpected '&'; use 'and'"
    if char == "|":
        return "unexpected '|'; use 'or'"
    if char == "-":
        return "unexpected '-'; a minus sign must be followed by digits"
    return f"unexpected character {char!r}"


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode the quoted string at ``start``; return it and the index after its closing quote.

    Known escapes (``\\n \\t \\r \\0 \\\\ \\" \\'`` and ``\\uXXXX``) are decoded;
    any other backslash is kept as written, so regular expressions such as
    ``"\\d+"`` need no doubling.
    """
    quote = text[start]
    out: list[str] = []
    pos = start + 1
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == quote:
            return "".join(out), pos + 1
        if char == "\\":
            if pos + 1 >= length:
                break
            following = text[pos + 1]
            if following in _ESCAPES:
                out.append(_ESCAPES[following])
                pos += 2
                continue
            if following == "u":
                digits = text[pos + 2 : pos + 6]
                if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise FilterError("expected four hex digits after '\\u'", text, pos + 1)
                code = int(digits, 16)
                if 0xD800 <= code <= 0xDFFF:
                    raise FilterError(f"'\\u{digits}' is a lone surrogate, not a character", text, pos + 1)
                out.append(chr(code))
                pos += 6
                continue
            out.append(char + following)
            pos += 2
            continue
        out.append(char)
        pos += 1
    raise FilterError(f"unterminated string: no closing {quote} before end of input", text, start + 1)
