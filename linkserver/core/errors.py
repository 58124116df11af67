"""The LinkServer exception hierarchy.

Every error the library raises on purpose derives from :class:`LinkServerError`.
Each one also subclasses the builtin it resembles (``LookupError``,
``ValueError``, ``PermissionError``), so callers that only know the builtins
still catch the right thing. Messages say what was wrong, where, and how to
fix it.
"""

from __future__ import annotations

from collections.abc import Iterable


class LinkServerError(Exception):
    """Base class of every error raised by LinkServer."""


class InvalidName(LinkServerError, ValueError):
    """A context name, path, mask or event name does not follow the rules."""


class InvalidDefinition(LinkServerError, ValueError):
    """An event definition or table format is inconsistent.

    ``problems`` holds every inconsistency found, each as ``(key, message)``
    where ``key`` names the attribute it is about (``""`` when none), so a
    reader of YAML can report each one at its own line.
    """

    def __init__(self, message: str | None = None, problems: Iterable[tuple[str, str]] = ()) -> None:
        self.problems = tuple(problems) or (("", message or "invalid definition"),)
        super().__init__(message if message is not None else "; ".join(m for _, m in self.problems))


class ContextNotFound(LinkServerError, LookupError):
    """No context exists at the given path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"context {display_path(path)!r} does not exist; the tree has the existing ones "
            "('ls' in the shell, 'linkserver tree'), or add it first"
        )


class ContextExists(LinkServerError, ValueError):
    """A context is added where one already exists."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"context {display_path(path)!r} already exists")


class TemplateNotFound(LinkServerError, LookupError):
    """A context names a definition template that does not exist."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        self.name = name
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown definition template {name!r}; known templates: {known_text}")


class EventNotDefined(LinkServerError, LookupError):
    """The context exists but defines no event of that name."""

    def __init__(self, path: str, name: str, known: Iterable[str] = ()) -> None:
        self.path = path
        self.name = name
        known = sorted(known)
        hint = f"; defined there: {', '.join(known)}" if known else "; it defines no events"
        super().__init__(f"event {name!r} is not defined in context {display_path(path)!r}{hint}")


class FieldError(LinkServerError, ValueError):
    """One bad value in a data table."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class DataTableError(LinkServerError, ValueError):
    """A data table does not satisfy its format. Names every bad field at once."""

    def __init__(self, problems: list[FieldError], where: str = "") -> None:
        self.problems = problems
        self.where = where
        prefix = f"invalid data for {where}: " if where else "invalid data table: "
        super().__init__(prefix + "; ".join(str(p) for p in problems))

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.problems]


class FilterError(LinkServerError, ValueError):
    """A filter expression cannot be parsed or does not fit the event format."""

    def __init__(self, message: str, expression: str = "", column: int | None = None) -> None:
        self.message = message
        self.expression = expression
        self.column = column
        text = message
        if column is not None:
            text = f"column {column}: {message}"
            if expression:
                text += f"\n  {expression}\n  {' ' * (column - 1)}^"
        super().__init__(text)


class InvalidTemplate(LinkServerError, ValueError):
    """A message template (linkserver.core.templates) cannot be parsed or names what the
    event does not have. ``column`` (from 1) points into ``template`` when known."""

    def __init__(self, message: str, template: str = "", column: int | None = None) -> None:
        self.message = message
        self.template = template
        self.column = column
        text = message
        if column is not None:
            text = f"column {column}: {message}"
            if template:
                text += f"\n  {template}\n  {' ' * (column - 1)}^"
        super().__init__(text)


class PermissionDenied(LinkServerError, PermissionError):
    """The acting user lacks the permission level an action needs."""


class UserNotFound(LinkServerError, LookupError):
    """No user of that name (or the caller may not manage users)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no user {name!r}; 'linkserver user list' shows the users")


class UserExists(LinkServerError, ValueError):
    """A user of that name exists already."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"user {name!r} exists already; change it with 'linkserver user passwd/grant'")


class GrantNotFound(LinkServerError, LookupError):
    """A user holds no grant on the mask to revoke."""


class TokenNotFound(LinkServerError, LookupError):
    """No API token of that name (to revoke)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"there is no API token {name!r}; GET /tokens or 'linkserver token list-tokens' lists them"
        )


class TooManyAttempts(LinkServerError, PermissionError):
    """Too many failed logins or unknown tokens: wait ``retry_after`` seconds (HTTP 429)."""

    def __init__(self, what: str, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"too many {what}; try again in {self.retry_after} s")


class DeviceOwned(PermissionDenied):
    """A device context belongs to another device controller: only it may adopt or remove it."""


class ConfigError(LinkServerError, ValueError):
    """Configuration or definition files are invalid.

    ``problems`` holds one ``file:line:column: message`` string per error.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UnknownRule(LinkServerError, LookupError):
    """No alert rule of that name (or none the caller may see)."""

    def __init__(self, name: str, known: Iterable[str] = ()) -> None:
        listing = ", ".join(sorted(known)) or "none are configured"
        super().__init__(f"no rule named {name!r} (rules: {listing}); rules are in the 'rules:' section")
        self.name = name


class HistoryError(LinkServerError):
    """History storage failed or was asked for something it cannot do."""


class EventNotFound(HistoryError, LookupError):
    """No stored event has that id (or the user may not see it)."""

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        super().__init__(f"no stored event with id {event_id}")


class ServerStopped(LinkServerError, RuntimeError):
    """The server is not running, so it cannot take the request."""


def display_path(path: str) -> str:
    return path if path else "root"


class HistoryUnavailable(HistoryError, RuntimeError):
    """History did not confirm a write in time (the database is down or overloaded).

    For a durable fire this means *not confirmed*, not *lost*: the event was
    validated and handed to history, and may still be stored once the
    database answers again. A caller that needs the event stored retries
    (firing again may store it twice) or checks history for ``event_id``.
    """

    event_id: int | None = None

    def __init__(self, message: str, event_id: int | None = None) -> None:
        self.event_id = event_id
        super().__init__(message)


# -- errors of the network API, shared by the server and its clients (linkserver.wire) -------


class BadRequest(LinkServerError, ValueError):
    """A request that is not valid JSON, or has a field of the wrong type or value (HTTP 400)."""


class AuthenticationFailed(LinkServerError, PermissionError):
    """Wrong user or password, or a missing, unknown or expired token (HTTP 401)."""


class NotFound(LinkServerError, LookupError):
    """No such route (HTTP 404), or, on a client, a 404 of a type it does not know."""


class TooLarge(LinkServerError, ValueError):
    """A message, body or batch exceeds the server's limits (HTTP 413)."""
