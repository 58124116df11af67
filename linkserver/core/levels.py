"""Event levels and permission levels."""

from __future__ import annotations

import enum
from typing import Self

from linkserver.core.errors import LinkServerError


class InvalidLevel(LinkServerError, ValueError):
    """A level name or number is not one of the known ones."""


class _ParsableLevel(enum.IntEnum):
    @classmethod
    def parse(cls, value: object) -> Self:
        """Accept a member, a name in any case, or its number (int or digit string)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        elif isinstance(value, str):
            text = value.strip()
            member = cls._member_map_.get(text.upper())  # a plain dict; __members__ builds a proxy per call
            if member is not None:
                return member  # type: ignore[return-value]  # _member_map_ holds members of cls
            if text.isdigit():
                try:
                    return cls(int(text))
                except ValueError:
                    pass
        names = ", ".join(f"{m.name}={m.value}" for m in cls)
        raise InvalidLevel(f"unknown {cls._label()} {value!r}; use one of {names}")

    @classmethod
    def _label(cls) -> str:
        return "level"

    def __str__(self) -> str:
        return self.name


class Level(_ParsableLevel):
    """How important an event is. The firer may override a definition's default."""

    NONE = 0
    NOTICE = 1
    INFO = 2
    WARNING = 3
    ERROR = 4
    FATAL = 5


class Permission(_ParsableLevel):
    """What a user may do in a context; each level includes the ones below.

    On history: observer reads, operator acknowledges, manager deletes,
    engineer purges; admin changes the tree.
    """

    NONE = 0
    OBSERVER = 1
    OPERATOR = 2
    MANAGER = 3
    ENGINEER = 4
    ADMIN = 5

    @classmethod
    def _label(cls) -> str:
        return "permission level"

    def __str__(self) -> str:
        return self.name.lower()
