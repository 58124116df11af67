"""What the sync and the async client share: addresses, credentials, request bodies, answers.

Nothing here does I/O except reading the local admin credentials file; the
clients are thin shells that move these dicts over httpx and websockets.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import quote, urlsplit

import attrs

from linkserver.client.errors import ProtocolError, error_from_answer
from linkserver.core.errors import BadRequest, LinkServerError
from linkserver.core.events import Event
from linkserver.core.levels import Level

if TYPE_CHECKING:
    import ssl

DEFAULT_URL = "http://127.0.0.1:7341"
API_PREFIX = "/api/v1"
URL_ENV = "LINKSERVER_URL"
TOKEN_ENV = "LINKSERVER_TOKEN"
CREDENTIALS_ENV = "LINKSERVER_CREDENTIALS"
CREDENTIALS_FILE = "admin.credentials"


@attrs.frozen
class Endpoint:
    """Where a server answers: ``base`` (``http://host:port``), its API prefix and its WebSocket."""

    base: str

    @property
    def api(self) -> str:
        return self.base + API_PREFIX

    @property
    def websocket(self) -> str:
        scheme, _, rest = self.base.partition("://")
        return ("wss" if scheme == "https" else "ws") + "://" + rest + API_PREFIX + "/ws"

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or ""

    def __str__(self) -> str:
        return self.base


def endpoint(url: str) -> Endpoint:
    """Normalise ``url``: ``host:port``, ``http(s)://host:port[/api/v1]`` or ``ws(s)://...``.

    Raises ValueError for something that is not an address.
    """
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a LinkServer address: {url!r}; write it like http://127.0.0.1:7341")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"not a LinkServer address: {url!r}: {exc}") from None
    return Endpoint(f"{scheme}://{parts.netloc}")


def tls_verify(where: Endpoint) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a client of ``where``: the CA bundle (or ``$SSL_CERT_FILE``)
    for https; for plain http, a TLS context that trusts no certificate.

    A client only requests its own server and follows no redirects, so over http
    the context is never used: loading the CA bundle for it would be ~20 ms of
    every one-shot command (tools/bench/cli.py). Should anything reach a TLS
    handshake all the same, it fails verification instead of going unchecked.
    """
    if where.base.startswith("https://"):
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and hostnames; no CAs


def is_local(url: str | Endpoint) -> bool:
    """True when the address is this machine's loopback."""
    host = (url if isinstance(url, Endpoint) else endpoint(url)).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class Credentials:
    """How to authenticate: a token, or a user and password to log in with, or nothing."""

    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    source: str = "arguments"


def credentials_path() -> Path | None:
    """``$LINKSERVER_CREDENTIALS``, else ``admin.credentials`` in the local server's data
    directory (see :mod:`linkserver.client.discovery`)."""
    explicit = os.environ.get(CREDENTIALS_ENV)
    if explicit:
        return Path(explicit)
    from linkserver.client.discovery import find_local_server

    local = find_local_server()
    return Path(local.data_dir) / CREDENTIALS_FILE if local is not None else None


def read_credentials_file(path: Path | None = None) -> dict[str, Any] | None:
    """The admin credentials file as a dict, or None when it is absent or unreadable."""
    path = path if path is not None else credentials_path()
    if path is None:
        return None
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def default_url() -> str:
    """``$LINKSERVER_URL``, else the running local server's (see :mod:`linkserver.client.discovery`),
    else the ``url`` in its credentials file, else http://127.0.0.1:7341.

    Raises ``SeveralServers`` (a ValueError) when several local servers run
    and nothing says which is meant.
    """
    url = os.environ.get(URL_ENV)
    if url:
        return url
    if not os.environ.get(CREDENTIALS_ENV):
        from linkserver.client.discovery import find_local_server

        local = find_local_server()
        if local is not None and local.url:
            return local.url
    stored = read_credentials_file()
    if stored and isinstance(stored.get("url"), str):
        return stored["url"]
    return DEFAULT_URL


def resolve_credentials(
    where: Endpoint, user: str | None, password: str | None, token: str | None
) -> Credentials:
    """Explicit token, else user and password, else ``$LINKSERVER_TOKEN``, else (local only) the file."""
    if token:
        return Credentials(token=token)
    if user is not None:
        return Credentials(user=user, password=password or "")
    env_token = os.environ.get(TOKEN_ENV)
    if env_token:
        return Credentials(token=env_token, source=f"${TOKEN_ENV}")
    if is_local(where):
        path = credentials_path()
        stored = read_credentials_file(path)
        if (
            stored
            and isinstance(stored.get("user"), str)
            and isinstance(stored.get("password"), str)
            and (os.environ.get(CREDENTIALS_ENV) or _same_server(where, stored.get("url")))
        ):
            return Credentials(user=stored["user"], password=stored["password"], source=str(path))
    return Credentials(source="none")


def _same_server(where: Endpoint, url: Any) -> bool:
    """Whether a found credentials file is for ``where`` (never send a password to another server):
    its recorded address is the same local port (localhost or 127.0.0.1 alike), or it records none."""
    if not isinstance(url, str):
        return True
    try:
        recorded = endpoint(url)
    except ValueError:
        return False
    return recorded.base == where.base or (
        is_local(recorded) and urlsplit(recorded.base).port == urlsplit(where.base).port
    )


def context_url(path: str) -> str:
    # The root is the empty path; in a URL it is spelt 'root'.
    return "/contexts/" + quote(path or "root", safe="")


# -- request bodies -----------------------------------------------------------


def event_url(event_id: int, action: str = "") -> str:
    """``/events/ID`` (or ``/events/ID/ACTION``); ``int`` so that nothing else lands in the path."""
    return f"/events/{int(event_id)}" + (f"/{action}" if action else "")


def resource_url(path: str, action: str = "") -> str:
    """``/resources/PATH`` (or ``/resources/PATH/ACTION``); the root is spelt 'root'."""
    return "/resources/" + quote(path or "root", safe="") + (f"/{action}" if action else "")


def transition_body(action: str | None, to: str | None, cause: str | None, durable: bool) -> dict[str, Any]:
    if (action is None) == (to is None):
        raise BadRequest("a transition names exactly one of action and to")
    body: dict[str, Any] = {"action": action} if action is not None else {"to": to}
    if cause is not None:
        body["cause"] = cause
    if durable:
        body["durable"] = True
    return body


def rule_url(name: str, action: str = "") -> str:
    return "/rules/" + quote(name, safe="") + (f"/{action}" if action else "")


def job_url(job_id: str, step: str = "") -> str:
    return "/jobs/" + quote(job_id, safe="") + (f"/{step}" if step else "")


def job_params(status: str | None, resource: str | None, limit: int) -> dict[str, str]:
    params = {"limit": str(limit)}
    if status is not None:
        params["status"] = status
    if resource is not None:
        params["resource"] = resource
    return params


def new_job_body(
    job_type: str,
    resource: str,
    start: bool,
    asynchronous: bool,
    job_id: str | None,
    start_within: float | None,
    timeout: float | None,
    message: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": job_type, "resource": resource}
    optional = {"id": job_id, "start_within": start_within, "timeout": timeout, "message": message}
    body.update({key: value for key, value in optional.items() if value is not None})
    if start:
        body["start"] = True
    if not asynchronous:
        body["asynchronous"] = False
    return body


def job_step_body(progress: int | None, message: str | None, result: str | None) -> dict[str, Any]:
    optional = {"progress": progress, "message": message, "result": result}
    return {key: value for key, value in optional.items() if value is not None}


def user_url(name: str, action: str = "") -> str:
    """``/users/NAME`` (or ``/users/NAME/ACTION``) of the users API."""
    return f"/users/{quote(name, safe='')}" + (f"/{action}" if action else "")


def token_url(name: str) -> str:
    """``/tokens/NAME`` of the API tokens."""
    return f"/tokens/{quote(name, safe='')}"


def new_user_body(
    name: str, password: str | None = None, grants: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if password is not None:
        body["password"] = password
    if grants:
        body["grants"] = {mask: str(level) for mask, level in grants.items()}
    return body


def password_body(password: str, current_password: str | None = None) -> dict[str, Any]:
    body = {"password": password}
    if current_password is not None:
        body["current_password"] = current_password
    return body


def level_name(level: Level | str | int | None) -> str | None:
    return None if level is None else Level.parse(level).name


def fire_item(
    context: str, event: str, data: Any = None, level: Level | str | int | None = None
) -> dict[str, Any]:
    """One fire request (without ``durable``), as in ``POST /fire`` and batches."""
    item: dict[str, Any] = {"context": context, "event": event}
    if data is not None:
        item["data"] = list(data) if isinstance(data, tuple) else data
    if level is not None:
        item["level"] = level_name(level)
    return item


BatchItem = Mapping[str, Any] | Sequence[Any]


def batch_items(events: Iterable[BatchItem]) -> list[dict[str, Any]]:
    """Entries from dicts ``{context, event, data?, level?}`` or ``(context, event[, data[, level]])``."""
    items = []
    for entry in events:
        if isinstance(entry, Mapping):
            unknown = set(entry) - {"context", "event", "data", "level"}
            if unknown or "context" not in entry or "event" not in entry:
                raise ValueError(
                    f"a batch entry needs context and event (and data, level only), got {dict(entry)!r}"
                )
            items.append(fire_item(entry["context"], entry["event"], entry.get("data"), entry.get("level")))
        elif isinstance(entry, Sequence) and not isinstance(entry, str) and 2 <= len(entry) <= 4:
            items.append(fire_item(*entry))
        else:
            raise ValueError(f"a batch entry is a dict or (context, event[, data[, level]]), got {entry!r}")
    return items


def _time_param(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _many(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class HistoryCriteria(TypedDict, total=False):
    """Keyword arguments of ``history`` and ``iter_history`` (``GET /history``); None means not given."""

    mask: str | Iterable[str] | None
    event: str | Iterable[str] | None
    filter: str | None
    min_level: Level | str | int | None
    max_level: Level | str | int | None
    since: datetime | str | None
    until: datetime | str | None
    group: str | None
    author: str | None
    acknowledged: bool | None
    requires_acknowledgement: bool | None
    order: str | None  # "newest" (the default) or "oldest"
    limit: int | None  # default 100; the page size of iter_history
    cursor: str | None
    count: bool | None


def history_params(
    *,
    mask: str | Iterable[str] | None = None,
    event: str | Iterable[str] | None = None,
    filter: str | None = None,  # noqa: A002 - the protocol's name
    min_level: Level | str | int | None = None,
    max_level: Level | str | int | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    group: str | None = None,
    author: str | None = None,
    acknowledged: bool | None = None,
    requires_acknowledgement: bool | None = None,
    order: str | None = None,
    limit: int | None = 100,
    cursor: str | None = None,
    count: bool | None = False,
) -> list[tuple[str, str]]:
    """The query string of ``GET /history`` (repeatable ``mask`` and ``event``)."""
    params = [("mask", m) for m in _many(mask)] + [("event", e) for e in _many(event)]
    single: dict[str, Any] = {
        "filter": filter,
        "min_level": level_name(min_level),
        "max_level": level_name(max_level),
        "since": _time_param(since) if since is not None else None,
        "until": _time_param(until) if until is not None else None,
        "group": group,
        "author": author,
        "acknowledged": None if acknowledged is None else str(bool(acknowledged)).lower(),
        "requires_acknowledgement": None
        if requires_acknowledgement is None
        else str(bool(requires_acknowledgement)).lower(),
        "order": order,
        "limit": None if limit is None else str(int(limit)),
        "cursor": cursor,
        "count": "true" if count else None,
    }
    params += [(k, v) for k, v in single.items() if v is not None]
    return params


# -- answers ------------------------------------------------------------------


@attrs.frozen
class HistoryPage:
    """One page of history: ``next_cursor`` is None after the last page; ``count`` if asked for."""

    events: tuple[Event, ...]
    next_cursor: str | None
    count: int | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


def expect(body: Any, key: str) -> Any:
    if not isinstance(body, dict) or key not in body:
        raise ProtocolError(f"the server's answer lacks {key!r}: {str(body)[:200]}")
    return body[key]


def parse_event(raw: Any) -> Event:
    try:
        return Event.unmarshal(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(
            f"the server sent an event the client cannot read ({exc}): {str(raw)[:200]}"
        ) from exc


def parse_page(body: Any) -> HistoryPage:
    events = tuple(parse_event(raw) for raw in expect(body, "events"))
    return HistoryPage(events=events, next_cursor=body.get("next_cursor"), count=body.get("count"))


def parse_results(results: Any, key: str) -> list[Any]:
    """Batch results in order: ``key`` is ``event`` (HTTP: an Event) or ``id`` (WebSocket: an int).

    A failed entry becomes its exception object (not raised).
    """
    if not isinstance(results, list):
        raise ProtocolError(f"batch results must be a list, got {str(results)[:200]}")
    out: list[Any] = []
    for result in results:
        if isinstance(result, dict) and "error" in result:
            out.append(error_from_answer(None, result))
        elif key == "event":
            out.append(parse_event(expect(result, "event")))
        else:
            out.append(int(expect(result, "id")))
    return out


def response_error(status: int, text: str) -> LinkServerError:
    """The exception for an HTTP error answer with body ``text``."""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    return error_from_answer(status, body)
