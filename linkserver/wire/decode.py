"""The one strict decoder of the network API: JSON text or query parameters into a shape.

Whatever comes from a client passes here before anything else looks at it,
so every field of every request is checked by its declaration in
:mod:`linkserver.wire.shapes`: types without coercion (``true`` is not ``1``),
no unknown keys, numbers that fit (no ``1e400``, no NaN), strings that are
text (no lone UTF-16 surrogate such as ``"\\ud800"``, which no encoder can
write back), ids within 64 bits. A failure is a :class:`BadRequest` naming
the field; nothing else ever escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Annotated, Any, TypeVar, get_args, get_origin

import msgspec
import msgspec.inspect

from linkserver.core.errors import BadRequest, TooLarge
from linkserver.wire import shapes
from linkserver.wire.shapes import REPEATABLE_PARAMS

T = TypeVar("T")

_JSON = msgspec.json.Decoder()
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}
_AT = re.compile(r" - at `\$(.*)`$")
_REGEX = re.compile(r"Expected `str` matching regex '(.*)'")


def _pattern_texts() -> dict[str, str]:
    """What each declared pattern means, in words (msgspec's message quotes the regex)."""
    texts = {}
    for value in vars(shapes).values():
        if get_origin(value) is Annotated:
            for meta in get_args(value)[1:]:
                if isinstance(meta, msgspec.Meta) and meta.pattern and meta.description:
                    texts[meta.pattern] = texts[repr(meta.pattern)[1:-1]] = meta.description
    return texts


_PATTERN_TEXTS = _pattern_texts()
# msgspec's words for a wrong time, and ours (saying what to write instead)
_PROBLEM_TEXTS = {
    "Invalid RFC3339 encoded datetime": "expected an RFC 3339 time, e.g. 2026-05-01T08:00:00Z or "
    "2026-05-01T10:00:00+02:00",
    "Expected `datetime`, got `str`": "expected an RFC 3339 time, e.g. 2026-05-01T08:00:00Z",
}


def check_size(text: str | bytes, limit: int, what: str = "the message") -> None:
    if len(text) > limit or (isinstance(text, str) and len(text) * 3 > limit and len(text.encode()) > limit):
        raise TooLarge(f"{what} is larger than {limit} bytes")


def loads(text: str | bytes, where: str = "the message") -> Any:
    """Any JSON document, strictly (see the module docstring)."""
    try:
        return _JSON.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise _not_json(exc, text, where) from None
    except UnicodeEncodeError:  # a str holding a lone surrogate itself
        raise BadRequest(f"{where} is not text: it holds a lone UTF-16 surrogate") from None


def decode(text: str | bytes, shape: type[T], where: str) -> T:
    """JSON text straight into ``shape`` (the fast path: one pass, no intermediate dicts)."""
    decoder = _DECODERS.get(shape)
    if decoder is None:
        decoder = _DECODERS[shape] = msgspec.json.Decoder(shape)
    try:
        return decoder.decode(text)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise shape_error(exc, where, shape) from None
    except msgspec.DecodeError as exc:
        raise _not_json(exc, text, where) from None
    except UnicodeEncodeError:
        raise BadRequest(f"{where} is not text: it holds a lone UTF-16 surrogate") from None


def convert(value: Any, shape: type[T], where: str, *, from_text: bool = False) -> T:
    """An already decoded value into ``shape``; ``from_text`` lets strings stand for numbers,
    booleans and times (query and path parameters are text)."""
    try:
        return msgspec.convert(value, shape, strict=not from_text)
    except msgspec.ValidationError as exc:
        raise shape_error(exc, where, shape) from None


def params(query: Any, shape: type[T], where: str = "the query parameters") -> T:
    """URL query parameters (anything with ``keys()`` and ``getlist()``) into ``shape``.

    Repeatable parameters become lists; any other given twice is an error.
    """
    values: dict[str, Any] = {}
    for key in dict.fromkeys(query.keys()):
        given = query.getlist(key)
        if key in REPEATABLE_PARAMS:
            values[key] = given
        elif len(given) > 1:
            raise BadRequest(f"query parameter {key!r} is given {len(given)} times; give it once")
        else:
            values[key] = given[0]
    _check_text(values, where)
    return convert(values, shape, where, from_text=True)


def shape_error(exc: msgspec.ValidationError, where: str, shape: Any = None) -> BadRequest:
    """A BadRequest saying which field was wrong and how, from msgspec's message (and, given
    the ``shape`` decoded into, the values a field of fixed choices takes)."""
    text = str(exc)
    match = _AT.search(text)
    field = match.group(1).lstrip(".") if match else ""
    problem = text[: match.start()] if match else text
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", problem)
    if unknown:
        name = (field + "." if field else "") + unknown.group(1)
        return BadRequest(f"{where}: unknown key {name!r}; see /openapi.json for the known ones")
    missing = re.fullmatch(r"Object missing required field `(.*)`", problem)
    if missing:
        name = (field + "." if field else "") + missing.group(1)
        return BadRequest(f"{where}: {name!r} is required")
    regex = _REGEX.fullmatch(problem)
    if regex and regex.group(1) in _PATTERN_TEXTS:
        meaning = _PATTERN_TEXTS[regex.group(1)]
        problem = f"expected {meaning[0].lower()}{meaning[1:]}"
    enum = re.fullmatch(r"Invalid enum value (.*)", problem)
    choices = _choices(shape, field) if enum else None
    if enum and choices:
        problem = f"{enum.group(1)} is not one of: {', '.join(map(str, choices))}"
    problem = _PROBLEM_TEXTS.get(problem, problem)
    problem = problem[0].lower() + problem[1:] if problem else "invalid"
    return BadRequest(f"{where}: {field!r}: {problem}" if field else f"{where}: {problem}")


def _choices(shape: Any, field: str) -> tuple[Any, ...] | None:
    """The values the field at ``field`` (msgspec's path: ``a.b[0]``) of ``shape`` may take,
    when it is a Literal or an Enum; None when it cannot be told."""
    try:
        info: Any = msgspec.inspect.type_info(shape)
        for step in re.findall(r"[^.\[\]]+|\[\d+\]", field):
            while isinstance(
                info, (msgspec.inspect.ListType, msgspec.inspect.TupleType, msgspec.inspect.SetType)
            ):
                info = info.item_type
            if step.startswith("["):
                continue
            info = next(f.type for f in info.fields if f.encode_name == step)
        while isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.SetType)):
            info = info.item_type
        if isinstance(info, msgspec.inspect.LiteralType):
            return tuple(info.values)
        if isinstance(info, msgspec.inspect.EnumType):
            return tuple(member.value for member in info.cls)
    except (AttributeError, StopIteration, TypeError, ValueError):
        pass
    return None


def _not_json(exc: Exception, text: str | bytes, where: str) -> BadRequest:
    if isinstance(exc, msgspec.ValidationError):  # untyped decoding: a number out of range
        return shape_error(exc, where)
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return BadRequest(f"{where} is not valid JSON: {exc}")
    return BadRequest(
        f"{where} is not valid JSON text: NaN, Infinity and lone UTF-16 surrogates "
        "(such as \\ud800 without its pair) are not allowed"
    )


def _check_text(values: dict[str, Any], where: str) -> None:
    for key, value in values.items():
        for item in value if isinstance(value, list) else (value,):
            if not _is_text(key) or not _is_text(item):
                raise BadRequest(f"{where}: {key!r} holds a lone UTF-16 surrogate")


def _is_text(value: Any) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def is_text(values: Iterable[str]) -> bool:
    """True when every string can be written as UTF-8 (no lone surrogates)."""
    return all(_is_text(v) for v in values)
