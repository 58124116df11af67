"""Users' grants: context mask -> permission level; the most specific match wins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from linkserver.core.levels import Permission
from linkserver.core.paths import Mask, compile_mask


class Grants:
    """An immutable set of grants with a per-path cache of the effective level.

    Specificity compares masks name by name: a literal name beats ``*``,
    which beats ``**``; on a tie the longer mask wins. ``users.alice`` beats
    ``users.*`` beats ``users.**`` beats ``**``.
    """

    __slots__ = ("_entries", "_cache", "_below")

    def __init__(self, grants: Mapping[str, object] | Iterable[tuple[str, object]] = ()) -> None:
        pairs = grants.items() if isinstance(grants, Mapping) else grants
        entries = [(compile_mask(mask), Permission.parse(level)) for mask, level in pairs]
        entries.sort(key=lambda entry: entry[0].specificity, reverse=True)
        self._entries: tuple[tuple[Mask, Permission], ...] = tuple(entries)
        self._cache: dict[str, Permission] = {}
        self._below: dict[str, bool] = {}  # may_see_below, per path (every network fire asks)

    def level_for(self, path: str) -> Permission:
        level = self._cache.get(path)
        if level is None:
            level = Permission.NONE
            for mask, granted in self._entries:
                if mask.matches(path):
                    level = granted
                    break
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[path] = level
        return level

    def allows(self, path: str, needed: Permission) -> bool:
        return self.level_for(path) >= needed

    def may_see_below(self, path: str) -> bool:
        """True if some context at or below ``path`` grants at least observer."""
        seen = self._below.get(path)
        if seen is None:
            seen = any(
                level > Permission.NONE and mask.could_match_below(path) for mask, level in self._entries
            )
            if len(self._below) > 100_000:
                self._below.clear()
            self._below[path] = seen
        return seen

    def items(self) -> list[tuple[str, Permission]]:
        return [(mask.text, level) for mask, level in self._entries]

    def __repr__(self) -> str:
        return f"Grants({dict(self.items())!r})"


@attrs.frozen(kw_only=True)
class Principal:
    """Who acts: a user (with grants) or a component such as a device controller."""

    name: str
    grants: Grants = attrs.field(factory=Grants, eq=False)
    is_component: bool = False

    def may(self, path: str, needed: Permission) -> bool:
        return self.grants.level_for(path) >= needed


SYSTEM = Principal(name="system", grants=Grants({"**": Permission.ADMIN}), is_component=True)
