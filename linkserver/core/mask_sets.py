"""What two context masks say together: can one context match both, does every context one
matches match the other (``linkserver check`` on rules: docs/rules.md).

A mask is a sequence of segments, each a name, ``*`` (one name) or ``**`` (any number of
names, none included). Both questions are decided on the masks alone by walking the two
masks side by side over the names a context could have: the names either mask spells, plus
one standing for every other name (a ``*`` or ``**`` cannot tell those apart).
"""

from __future__ import annotations

from collections.abc import Iterator

from linkserver.core.paths import Mask, compile_mask

_OTHER = ""  # a name no mask spells (a real name is never empty)


def masks_overlap(first: str | Mask, second: str | Mask) -> bool:
    """Whether some context matches both masks (``devices.*`` and ``**.plc1``: yes;
    ``devices.*`` and ``alerts.**``: no)."""
    return any(a and b for a, b in _outcomes(_segments(first), _segments(second)))


def mask_within(inner: str | Mask, outer: str | Mask) -> bool:
    """Whether every context ``inner`` matches also matches ``outer`` (``devices.plc1`` within
    ``devices.*``: yes; ``devices.**`` within ``devices.*``: no, ``devices`` and
    ``devices.a.b`` are not)."""
    return not any(a and not b for a, b in _outcomes(_segments(inner), _segments(outer)))


def _segments(mask: str | Mask) -> tuple[str, ...]:
    return (compile_mask(mask) if isinstance(mask, str) else mask).segments


def _closure(segments: tuple[str, ...], states: frozenset[int]) -> frozenset[int]:
    """``states`` plus the positions after any ``**`` matching no name."""
    found = set(states)
    todo = list(states)
    while todo:
        at = todo.pop()
        if at < len(segments) and segments[at] == "**" and at + 1 not in found:
            found.add(at + 1)
            todo.append(at + 1)
    return frozenset(found)


def _step(segments: tuple[str, ...], states: frozenset[int], name: str) -> frozenset[int]:
    after = set()
    for at in states:
        if at == len(segments):
            continue
        segment = segments[at]
        if segment == "**":
            after.add(at)
        elif segment == "*" or segment == name:
            after.add(at + 1)
    return _closure(segments, frozenset(after))


def _outcomes(first: tuple[str, ...], second: tuple[str, ...]) -> Iterator[tuple[bool, bool]]:
    """For every context (every sequence of names): ``(first matches, second matches)``,
    each distinct pair of the masks' positions once."""
    names = sorted({s for s in (*first, *second) if s not in ("*", "**")}) + [_OTHER]
    start = (_closure(first, frozenset({0})), _closure(second, frozenset({0})))
    seen = {start}
    todo = [start]
    while todo:
        a, b = todo.pop()
        yield len(first) in a, len(second) in b
        if not a:
            continue  # no context from here matches the first mask: nothing more to learn
        for name in names:
            pair = (_step(first, a, name), _step(second, b, name))
            if pair not in seen:
                seen.add(pair)
                todo.append(pair)
