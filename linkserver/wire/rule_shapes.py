"""The documents of the alert rule operations (docs/rules.md), declared once.

Kept apart from :mod:`linkserver.wire.shapes` (which they build on), like the
resource shapes; /openapi.json takes them from :data:`linkserver.wire.routes.OPERATIONS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta

from linkserver.wire.shapes import Name, Shape, Time

RuleKind = Literal["count", "absence", "threshold", "escalation"]
Duration = Annotated[
    str,
    Meta(
        pattern=r"^(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+$",
        description="A duration such as 7d, 6h, 30m, 45s or 1d12h",
    ),
]
Since = Annotated[
    str,
    Meta(
        min_length=1,
        description="How far back: a duration (7d, 6h, 30m) or an RFC 3339 time (2026-05-01T08:00:00Z)",
    ),
]


class RulePath(Shape):
    name: Name


class Rule(Shape):
    name: str
    kind: RuleKind
    enabled: Annotated[bool, Meta(description="False: checked and dry-run, but not evaluated")]
    mask: str
    event: str
    alert: Annotated[str, Meta(description="The context the rule fires its events in")]
    description: Annotated[str, Meta(description="What the rule watches and when it fires, in words")]
    fired: Annotated[int, Meta(description="Events the rule fired since the server started")]
    last_fired: datetime | None
    state: Annotated[dict[str, Any], Meta(description="What the rule holds now: open alerts, counts...")]


class RulesAnswer(Shape):
    rules: list[Rule]


class RuleAnswer(Shape):
    rule: Rule


class RuleTestQuery(Shape):
    """``GET /rules/{name}/test``: replay history from ``since`` (that long ago, or that time) to
    ``until`` (default now)."""

    since: Since = "1d"
    until: Time | None = None


class Firing(Shape):
    rule: str
    event: Annotated[str, Meta(description="alert, alertCleared or escalated")]
    key: str
    at: Annotated[datetime, Meta(description="When it would have fired")]
    level: str | None
    cause_id: Annotated[int | None, Meta(description="The event that made it fire; null when time did")]
    data: dict[str, Any]


class RuleTestAnswer(Shape):
    rule: str
    since: datetime
    until: datetime
    events: Annotated[int, Meta(description="Stored events replayed (those the caller may see)")]
    fired: list[Firing]
