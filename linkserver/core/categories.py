"""Event categories: how outside subscribers choose what they receive (DESIGN.md §2).

Every definition has one of five categories. A definition that names none gets
one derived from what it is (:func:`derive_category`), so the standard events
are categorised without anyone writing it down: ``stateChanged`` is a
resource's state change, the job events are asynchronous jobs, ``action`` is
the audit trail, an event an operator must acknowledge is an alert, and the
rest (measurements, connections, ...) are usage.
"""

from __future__ import annotations

import enum

from linkserver.core.errors import LinkServerError


class InvalidCategory(LinkServerError, ValueError):
    """A category name is not one of the five."""


class Category(enum.StrEnum):
    ACTION = "ActionEvent"
    ALERT = "AlertEvent"
    USAGE = "UsageEvent"
    RESOURCE_STATE = "ResourceStateEvent"
    ASYNC_JOB = "AsyncJobEvent"

    @classmethod
    def parse(cls, value: object) -> Category:
        """A member, or its name as written in YAML (``ActionEvent``; any case)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            found = _BY_LOWER.get(value.strip().lower())
            if found is not None:
                return found
        raise InvalidCategory(f"unknown category {value!r}; use one of {', '.join(CATEGORY_NAMES)}")


CATEGORY_NAMES: tuple[str, ...] = tuple(c.value for c in Category)
_BY_LOWER = {c.value.lower(): c for c in Category}

STATE_CHANGED = "stateChanged"
"""The event a state machine fires in a resource's context for every transition."""
ACTION = "action"
"""The audit trail's event, fired in the actor's ``users.NAME`` context."""
JOB_EVENTS = frozenset(
    {"jobScheduled", "jobStarted", "jobProgress", "jobCompleted", "jobFailed", "jobHanging", "jobWarning"}
)
"""The events of long-running jobs (linkserver/server/jobs.py)."""
ALERT_NAMES = frozenset({"alert"})


def derive_category(
    name: str, *, group: str | None = None, requires_acknowledgement: bool = False
) -> Category:
    """The category of a definition that names none."""
    if name == STATE_CHANGED:
        return Category.RESOURCE_STATE
    if name in JOB_EVENTS:
        return Category.ASYNC_JOB
    if name == ACTION:
        return Category.ACTION
    if name in ALERT_NAMES or requires_acknowledgement or group == "alerts":
        return Category.ALERT
    return Category.USAGE
