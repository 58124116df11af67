"""The documents of the API token operations (``/tokens``, docs/protocol.md), declared once.

API tokens (``NAME.SECRET``) are for device controllers and scripts; they live in the
history database, so every node accepts them (linkserver/net/tokens.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta

from linkserver.wire.rule_shapes import Duration
from linkserver.wire.shapes import GrantTable, Name, PermissionName, Shape


class NewToken(Shape):
    name: Name
    grants: Annotated[GrantTable, Meta(min_length=1)]
    lifetime: Annotated[
        Duration | None, Meta(description="How long it is valid, e.g. 90d; none: until revoked")
    ] = None


class ApiToken(Shape):
    name: str
    grants: dict[str, PermissionName]
    created: datetime
    expires: datetime | None


class TokensAnswer(Shape):
    tokens: list[ApiToken]


class CreatedToken(Shape):
    token: Annotated[
        str, Meta(description="NAME.SECRET: shown in this answer only (the server keeps a hash)")
    ]
    api_token: ApiToken


class TokenPath(Shape):
    name: Name
