"""The server configuration file (``config/linkserver.yaml``) -> :class:`ServerConfig`.

Every key is optional; relative paths are relative to the directory of the
configuration file. :func:`load_config` reports every problem at once, as
one :class:`ConfigError` of ``file:line:column: message`` strings.

Which file: the one given, else ``$LINKSERVER_CONFIG``, else
``config/linkserver.yaml`` in the working directory, else the configuration
shipped in the package (``linkserver/defaults/``, with the standard
contexts beside it) with its data in ``./data``. ``data_dir`` and
``listen`` can be overridden without editing the file (``linkserver serve
--data-dir --listen``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from linkserver.core.errors import InvalidName
from linkserver.core.expiration import DEFAULT_EXPIRATION, ExpirationRule, ExpirationTable
from linkserver.core.levels import Permission
from linkserver.core.paths import check_name, compile_mask
from linkserver.core.permissions import Grants
from linkserver.loading.entries import Entries, as_mapping
from linkserver.loading.problems import Location, Problems, describe, display_name
from linkserver.loading.shipped import SHIPPED_CONFIG
from linkserver.loading.yamlnodes import MISSING, Document, parse, read
from linkserver.runtime import CONFIG_ENV

DEFAULT_CONFIG_PATH = Path("config") / "linkserver.yaml"

TOP_KEYS = ("server", "history", "delivery", "expiration", "users", "controllers", "auth")
SERVER_KEYS = ("node_id", "data_dir", "contexts", "listen", "log_format", "metrics")
LOG_FORMATS = ("text", "json")
METRICS_ACCESS = ("observer", "open")  # who may read /metrics (linkserver.net.metrics)
HISTORY_KEYS = ("database_url", "default_expiration", "durability", "writer", "purge")
DURABILITY_MODES = ("commit", "fsync")  # linkserver.history.engine.DURABILITY says what each survives
WRITER_KEYS = ("batch_size", "flush_interval", "queue_size")
PURGE_KEYS = ("interval", "batch_size")
DELIVERY_KEYS = ("queue_size",)
RULE_KEYS = ("mask", "event", "expiration")
USER_KEYS = ("password_hash", "grants")
CONTROLLER_KEYS = ("name", "class", "options")
AUTH_KEYS = ("session_lifetime", "allowed_origins", "throttle")
THROTTLE_KEYS = (
    "user_failures",
    "address_failures",
    "token_failures",
    "first_delay",
    "max_delay",
    "forget_after",
)

MAX_NODE_ID = 1023
_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@attrs.frozen(kw_only=True)
class UserConfig:
    """A configured user. ``password_hash`` is an opaque scrypt string set by the server."""

    name: str
    password_hash: str | None = None
    grants: Grants = attrs.field(factory=Grants, eq=False)


@attrs.frozen(kw_only=True)
class ControllerConfig:
    """A device controller plugin: ``target`` is ``module:attribute``, not imported here."""

    name: str
    target: str
    options: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class AuthConfig:
    """Sessions, login back-off and the WebSocket ``Origin`` check (``auth`` in the file).

    ``allowed_origins`` empty: only the server's own host (and clients that
    send no ``Origin``); ``"*"`` allows every origin.
    """

    session_lifetime: timedelta = timedelta(hours=12)
    allowed_origins: tuple[str, ...] = ()
    user_failures: int = 5
    address_failures: int = 20
    token_failures: int = 20
    first_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(hours=1)


def _default_users() -> dict[str, UserConfig]:
    return {"admin": UserConfig(name="admin", grants=Grants({"**": Permission.ADMIN}))}


def sqlite_url(data_dir: Path) -> str:
    """The default history database: ``<data_dir>/history.sqlite3``."""
    return f"sqlite:///{(data_dir / 'history.sqlite3').as_posix()}"


@attrs.frozen(kw_only=True)
class ServerConfig:
    """Everything the server needs besides the context definitions. Paths are absolute."""

    node_id: int = 0
    data_dir: Path
    context_paths: tuple[Path, ...] = ()
    listen_host: str = "127.0.0.1"
    listen_port: int = 7341
    log_format: str = "text"
    metrics_access: str = "observer"
    database_url: str
    default_expiration: timedelta = DEFAULT_EXPIRATION
    history_durability: str = "commit"
    writer_batch_size: int = 500
    writer_flush_interval: timedelta = timedelta(milliseconds=5)
    writer_queue_size: int = 10_000
    purge_interval: timedelta = timedelta(hours=1)
    purge_batch_size: int = 5000
    delivery_queue_size: int = 1000
    expiration: ExpirationTable = attrs.field(eq=False)
    users: Mapping[str, UserConfig] = attrs.field(factory=_default_users, eq=False)
    controllers: tuple[ControllerConfig, ...] = ()
    auth: AuthConfig = attrs.field(factory=AuthConfig)
    source: Path | None = None

    @classmethod
    def default(cls, data_dir: Path | str | None = None, **changes: Any) -> ServerConfig:
        """A configuration without any file: the documented defaults, ``data_dir`` (default ``./data``).

        ``changes`` set other fields; ``database_url`` and ``expiration``
        follow ``data_dir`` and ``default_expiration`` unless given.
        """
        directory = Path(os.path.abspath(Path(data_dir) if data_dir is not None else Path("data")))
        default_expiration = changes.get("default_expiration", DEFAULT_EXPIRATION)
        changes.setdefault("database_url", sqlite_url(directory))
        changes.setdefault("expiration", ExpirationTable(default=default_expiration))
        return cls(data_dir=directory, **changes)


@attrs.frozen
class RuleOrigin:
    """An expiration rule and where it is written, for the checks across files."""

    rule: ExpirationRule
    location: Location
    event_location: Location


@attrs.frozen
class ConfigResult:
    """A read configuration plus the positions the cross-file checks report at."""

    config: ServerConfig | None
    rules: tuple[RuleOrigin, ...]
    context_locations: Mapping[Path, Location]


def default_config_path() -> Path:
    """``$LINKSERVER_CONFIG``, else ``config/linkserver.yaml`` in the working directory
    when it exists, else the shipped configuration."""
    return config_source(None)[0]


def config_source(path: Path | None) -> tuple[Path, Path | None]:
    """The configuration file to read for ``path`` and the data directory it implies.

    The implied directory is ``./data`` for the shipped configuration (its
    own ``data_dir`` would point into the installed package) and None for
    any other file, whose ``data_dir`` applies.
    """
    if path is not None:
        return Path(path), None
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit), None
    if DEFAULT_CONFIG_PATH.exists():
        return DEFAULT_CONFIG_PATH, None
    return SHIPPED_CONFIG, Path.cwd() / "data"


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:7341`` for IPv6; port 0 means any free port) -> ``(host, port)``.

    Raises ValueError naming the expected form.
    """
    host, _, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535 or any(c.isspace() for c in host):
        raise ValueError(f"{text!r} is not host:port such as 127.0.0.1:7341 or [::1]:7341")
    return host, int(port)


def load_config(
    path: Path | None = None, *, data_dir: Path | str | None = None, listen: str | None = None
) -> ServerConfig:
    """Read a configuration file; raises ConfigError listing every problem.

    ``path=None`` reads what :func:`config_source` names (the shipped
    configuration when there is no other). ``data_dir`` and ``listen``
    replace the file's values (the history database follows ``data_dir``
    unless the file names a ``database_url``).
    """
    source, implied = config_source(path)
    problems = Problems()
    result = read_config(
        read(source, problems), source, problems, data_dir=data_dir or implied, listen=listen
    )
    problems.raise_if_any()
    assert result.config is not None
    return result.config


def load_config_text(text: str, path: Path) -> ServerConfig:
    """Like :func:`load_config` for ``text`` as if it were the file at ``path``."""
    problems = Problems()
    result = read_config(parse(display_name(path), text, problems), path, problems)
    problems.raise_if_any()
    assert result.config is not None
    return result.config


def read_config(
    doc: Document | None,
    path: Path,
    problems: Problems,
    *,
    data_dir: Path | str | None = None,
    listen: str | None = None,
) -> ConfigResult:
    """Read a composed configuration; problems go to ``problems`` (config is None if any).

    ``data_dir`` and ``listen`` given here win over the file's (which are
    still checked); a bad ``listen`` is a ValueError.
    """
    before = len(problems)
    base = Path(os.path.abspath(path)).parent
    if doc is None:
        return ConfigResult(None, (), {})
    top = as_mapping(doc, doc.root, "the configuration")
    top.check_keys(TOP_KEYS)
    values: dict[str, Any] = {}
    server = top.mapping("server", "'server'")
    server.check_keys(SERVER_KEYS)
    values["node_id"] = server.integer("node_id", minimum=0, maximum=MAX_NODE_ID)
    written_dir = server.text("data_dir", "../data")
    directory = _absolute(base, written_dir if isinstance(written_dir, str) else "../data")
    if data_dir is not None:
        directory = Path(os.path.abspath(Path(data_dir).expanduser()))
    values["data_dir"] = directory
    contexts = _context_paths(server, base, doc)
    values["context_paths"] = tuple(contexts)
    written_listen = _listen(server)
    address = parse_listen(listen) if listen is not None else written_listen
    if address is not None:
        values["listen_host"], values["listen_port"] = address
    values["log_format"] = _choice(server, "log_format", LOG_FORMATS, "text")
    values["metrics_access"] = _choice(server, "metrics", METRICS_ACCESS, "observer")

    history = top.mapping("history", "'history'")
    history.check_keys(HISTORY_KEYS)
    url = history.text("database_url", None, nullable=True)
    values["database_url"] = url if isinstance(url, str) and url else sqlite_url(directory)
    values["default_expiration"] = history.duration("default_expiration")
    values["history_durability"] = history.typed(
        "durability", MISSING, _durability, f"one of {', '.join(DURABILITY_MODES)}"
    )
    writer = history.mapping("writer", "'writer' in 'history'")
    writer.check_keys(WRITER_KEYS)
    values["writer_batch_size"] = writer.integer("batch_size", minimum=1)
    values["writer_flush_interval"] = writer.duration("flush_interval", positive=False)
    values["writer_queue_size"] = writer.integer("queue_size", minimum=1)
    purge = history.mapping("purge", "'purge' in 'history'")
    purge.check_keys(PURGE_KEYS)
    values["purge_interval"] = purge.duration("interval")
    values["purge_batch_size"] = purge.integer("batch_size", minimum=1)

    delivery = top.mapping("delivery", "'delivery'")
    delivery.check_keys(DELIVERY_KEYS)
    values["delivery_queue_size"] = delivery.integer("queue_size", minimum=1)

    rules = _rules(top, doc)
    default_expiration = values["default_expiration"]
    if default_expiration is MISSING:
        default_expiration = DEFAULT_EXPIRATION
    values["expiration"] = ExpirationTable((r.rule for r in rules), default=default_expiration)
    if "users" in top:
        values["users"] = _users(top)
    values["controllers"] = _controllers(top)
    values["auth"] = _auth(top)
    values["source"] = Path(os.path.abspath(path))
    if len(problems) > before:
        return ConfigResult(None, tuple(rules), contexts)
    config = ServerConfig(**{k: v for k, v in values.items() if v is not MISSING})
    return ConfigResult(config, tuple(rules), contexts)


def _durability(value: Any) -> str:
    if value not in DURABILITY_MODES:
        raise ValueError(value)
    return str(value)


def _absolute(base: Path, text: str) -> Path:
    return Path(os.path.normpath(base / Path(text).expanduser()))


def _context_paths(server: Entries, base: Path, doc: Document) -> dict[Path, Location]:
    node = server.get("contexts")
    if node is None:
        # Reported (if missing) at the start of 'server', or of the file.
        at = server.anchor if server.anchor is not None else doc.root
        return {_absolute(base, "../contexts"): doc.at(at) if at is not None else Location(doc.name, 1, 1)}
    items = [node] if node.tag == "tag:yaml.org,2002:str" else server.sequence("contexts")
    paths: dict[Path, Location] = {}
    for item in items:
        value = doc.plain(item)
        if not isinstance(value, str) or not value:
            server.error(
                item, f"'contexts' in 'server' must list directories or files, got {describe(value)}"
            )
            continue
        paths.setdefault(_absolute(base, value), doc.at(item))
    return paths


def _choice(entries: Entries, key: str, choices: tuple[str, ...], default: str) -> str:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(value)
        return str(value)

    return str(entries.typed(key, default, convert, " or ".join(repr(c) for c in choices)))


def _listen(server: Entries) -> tuple[str, int] | None:
    def convert(value: Any) -> tuple[str, int]:
        if not isinstance(value, str):
            raise TypeError
        return parse_listen(value)

    listen = server.typed("listen", None, convert, "'host:port' such as 127.0.0.1:7341 or [::1]:7341")
    return listen if isinstance(listen, tuple) else None


def _rules(top: Entries, doc: Document) -> list[RuleOrigin]:
    rules: list[RuleOrigin] = []
    seen: dict[tuple[str, str], Location] = {}
    for index, item in enumerate(top.sequence("expiration"), start=1):
        entries = as_mapping(doc, item, f"expiration rule {index}")
        if entries.node is None:
            if not entries.bad:
                doc.error(item, f"{entries.where} must be a mapping, got null")
            continue
        entries.check_keys(RULE_KEYS)
        mask = entries.text("mask") if entries.require("mask") else MISSING
        if mask is not MISSING:
            try:
                compile_mask(mask)
            except InvalidName as exc:
                entries.error(entries.get("mask"), f"{exc}; a mask is like devices.*, users.** or **")
        event = entries.text("event", "*")
        event_node = entries.get("event") or entries.anchor
        if event != "*" and isinstance(event, str):
            try:
                check_name(event, "event name")
            except InvalidName as exc:
                entries.error(event_node, f"{exc} (or '*' for every event)")
        expiration = entries.duration("expiration") if entries.require("expiration") else MISSING
        if entries.bad:
            continue
        location = doc.at(item)
        first = seen.get((mask, event))
        if first is not None:
            doc.error(
                item,
                f"a rule for mask {mask!r} and event {event!r} already exists at "
                f"{first.seen_from(location)}; remove one of them",
            )
            continue
        seen[(mask, event)] = location
        rule = ExpirationRule(mask=mask, event=event, expiration=expiration)
        rules.append(RuleOrigin(rule, location, doc.at(event_node)))
    return rules


def _users(top: Entries) -> dict[str, UserConfig]:
    users: dict[str, UserConfig] = {}
    doc = top.doc
    for key, node in top.mapping("users", "'users'").items.values():
        name = key.value
        try:
            check_name(name, "user name")
        except InvalidName as exc:
            top.error(key, str(exc))
            continue
        entries = as_mapping(doc, node, f"user {name!r}")
        entries.check_keys(USER_KEYS)
        password_hash = entries.text("password_hash", None, nullable=True)
        grants: dict[str, Permission] = {}
        for mask_node, level_node in entries.mapping("grants", f"the grants of user {name!r}").items.values():
            try:
                compile_mask(mask_node.value)
            except InvalidName as exc:
                entries.error(mask_node, f"{exc}; a mask is like devices.*, users.** or **")
                continue
            level = doc.plain(level_node)
            try:
                grants[mask_node.value] = Permission.parse(level)
            except ValueError:
                levels = ", ".join(str(p) for p in Permission)
                entries.error(
                    level_node,
                    f"the grant of {mask_node.value!r} to user {name!r} must be one of "
                    f"{levels}, got {describe(level)}",
                )
        if not entries.bad:
            users[name] = UserConfig(name=name, password_hash=password_hash, grants=Grants(grants))
    return users


def _auth(top: Entries) -> AuthConfig:
    auth = top.mapping("auth", "'auth'")
    auth.check_keys(AUTH_KEYS)
    values: dict[str, Any] = {"session_lifetime": auth.duration("session_lifetime")}
    origins: list[str] = []
    for node in auth.sequence("allowed_origins"):
        value = top.doc.plain(node)
        if value == "*" or (isinstance(value, str) and re.fullmatch(r"https?://[^/\s]+", value)):
            origins.append(value.lower())
        else:
            auth.error(
                node,
                f"each of 'allowed_origins' in 'auth' must be an origin such as https://ops.example.com "
                f"(scheme and host, no path) or '*', got {describe(value)}",
            )
    values["allowed_origins"] = tuple(origins)
    throttle = auth.mapping("throttle", "'throttle' in 'auth'")
    throttle.check_keys(THROTTLE_KEYS)
    for key in ("user_failures", "address_failures", "token_failures"):
        values[key] = throttle.integer(key, minimum=1)
    for key in ("first_delay", "max_delay", "forget_after"):
        values[key] = throttle.duration(key)
    return AuthConfig(**{k: v for k, v in values.items() if v is not MISSING})


def _controllers(top: Entries) -> tuple[ControllerConfig, ...]:
    controllers: list[ControllerConfig] = []
    seen: dict[str, Location] = {}
    doc = top.doc
    for index, item in enumerate(top.sequence("controllers"), start=1):
        entries = as_mapping(doc, item, f"controller {index}")
        if entries.node is None:
            if not entries.bad:
                doc.error(item, f"{entries.where} must be a mapping, got null")
            continue
        entries.check_keys(CONTROLLER_KEYS)
        name = entries.text("name") if entries.require("name") else MISSING
        if isinstance(name, str):
            try:
                check_name(name, "controller name")
                entries.where = f"controller {name!r}"
            except InvalidName as exc:
                entries.error(entries.get("name"), str(exc))
        target = entries.text("class") if entries.require("class") else MISSING
        if isinstance(target, str) and not _TARGET.fullmatch(target):
            entries.error(
                entries.get("class"),
                f"'class' in {entries.where} must be 'module.path:ClassName', got {target!r}",
            )
        options = entries.value("options", {})
        if options is None:
            options = {}
        if not isinstance(options, dict):
            entries.error(
                entries.get("options"),
                f"'options' in {entries.where} must be a mapping, got {describe(options)}",
            )
        if entries.bad:
            continue
        location = doc.at(item)
        if name in seen:
            doc.error(
                entries.get("name"),
                f"controller {name!r} is already defined at "
                f"{seen[name].seen_from(location)}; give each controller its own name",
            )
            continue
        seen[name] = location
        controllers.append(ControllerConfig(name=name, target=target, options=options))
    return tuple(controllers)
