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

from linkserver.core.expiration import DEFAULT_EXPIRATION, ExpirationRule, ExpirationTable
from linkserver.core.levels import Permission
from linkserver.core.permissions import Grants
from linkserver.loading.entries import Entries, as_mapping
from linkserver.loading.problems import Location, Problems, describe, display_name
from linkserver.loading.sections import (
    SECTIONS,
    TOP,
    Reading,
    choice,
    duration,
    integer,
    item_name,
    items,
    located,
    mapping_value,
    mask,
    name,
    named_items,
    read_sections,
    section,
    setting,
    text,
)
from linkserver.loading.shipped import SHIPPED_CONFIG, SHIPPED_CONTEXTS
from linkserver.loading.yamlnodes import MISSING, Document, parse, read
from linkserver.runtime import CONFIG_ENV

DEFAULT_CONFIG_PATH = Path("config") / "linkserver.yaml"

LOG_FORMATS = ("text", "json")
METRICS_ACCESS = ("observer", "open")  # who may read /metrics (linkserver.net.metrics)
DURABILITY_MODES = ("commit", "fsync")  # linkserver.history.engine.DURABILITY says what each survives
MAX_NODE_ID = 1023
_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def sqlite_url(data_dir: Path) -> str:
    """The default history database: ``<data_dir>/history.sqlite3``."""
    return f"sqlite:///{(data_dir / 'history.sqlite3').as_posix()}"


# -- how the values that are more than a typed scalar are read ----------------


def _data_dir(entries: Entries, key: str, reading: Reading) -> Path:
    written = entries.text(key, "../data")
    directory = reading.absolute(written if isinstance(written, str) else "../data")
    if reading.data_dir is not None:  # given on the command line: wins (the file's is still checked)
        directory = Path(os.path.abspath(Path(reading.data_dir).expanduser()))
    return directory


def _context_paths(server: Entries, key: str, reading: Reading) -> dict[Path, Location]:
    doc = reading.doc
    node = server.get(key)
    if node is None:
        # Reported (if missing) at the start of 'server', or of the file.
        at = server.anchor if server.anchor is not None else doc.root
        beside = reading.absolute("../contexts")
        # A file that names no contexts and has none beside it (one written to change a few
        # settings, as docs/cluster.md's) gets the standard ones, as no configuration does.
        found = beside if beside.exists() else SHIPPED_CONTEXTS
        return {found: doc.at(at) if at is not None else Location(doc.name, 1, 1)}
    nodes = [node] if node.tag == "tag:yaml.org,2002:str" else server.sequence(key)
    paths: dict[Path, Location] = {}
    for item in nodes:
        value = doc.plain(item)
        if not isinstance(value, str) or not value:
            server.error(
                item, f"'contexts' in 'server' must list directories or files, got {describe(value)}"
            )
            continue
        paths.setdefault(reading.absolute(value), doc.at(item))
    return paths


def _listen(server: Entries, key: str, reading: Reading) -> tuple[str, int] | None:
    def convert(value: Any) -> tuple[str, int]:
        if not isinstance(value, str):
            raise TypeError
        return parse_listen(value)

    written = server.typed(key, None, convert, "'host:port' such as 127.0.0.1:7341 or [::1]:7341")
    if reading.listen is not None:  # a bad one is a ValueError: the command line reports it
        return parse_listen(reading.listen)
    return written if isinstance(written, tuple) else None


def _durability(entries: Entries, key: str, reading: Reading) -> Any:
    def convert(value: Any) -> str:
        if value not in DURABILITY_MODES:
            raise ValueError(value)
        return str(value)

    return entries.typed(key, MISSING, convert, f"one of {', '.join(DURABILITY_MODES)}")


def _grants(entries: Entries, key: str, reading: Reading) -> Grants:
    user = getattr(reading, "item_name", "?")
    doc = reading.doc
    grants: dict[str, Permission] = {}
    for mask_node, level_node in entries.mapping(key, f"the grants of user {user!r}").items.values():
        try:
            Grants({mask_node.value: Permission.NONE})
        except Exception as exc:  # an invalid mask: InvalidName
            entries.error(mask_node, f"{exc}; a mask is like devices.*, users.** or **")
            continue
        level = doc.plain(level_node)
        try:
            grants[mask_node.value] = Permission.parse(level)
        except ValueError:
            levels = ", ".join(str(p) for p in Permission)
            entries.error(
                level_node,
                f"the grant of {mask_node.value!r} to user {user!r} must be one of "
                f"{levels}, got {describe(level)}",
            )
    return Grants(grants)


def _target(entries: Entries, key: str, reading: Reading) -> Any:
    target = entries.text(key)
    if isinstance(target, str) and not _TARGET.fullmatch(target):
        entries.error(
            entries.get(key),  # type: ignore[arg-type]
            f"{key!r} in {entries.where} must be 'module.path:ClassName', got {target!r}",
            key,
        )
        return MISSING
    return target


def _origins(auth: Entries, key: str, reading: Reading) -> tuple[str, ...]:
    origins: list[str] = []
    for node in auth.sequence(key):
        value = reading.doc.plain(node)
        if value == "*" or (isinstance(value, str) and re.fullmatch(r"https?://[^/\s]+", value)):
            origins.append(value.lower())
        else:
            auth.error(
                node,
                f"each of 'allowed_origins' in 'auth' must be an origin such as https://ops.example.com "
                f"(scheme and host, no path) or '*', got {describe(value)}",
            )
    return tuple(origins)


# -- the sections (docs/yaml-reference.md says what each key means) -----------


@section("server")
@attrs.frozen(kw_only=True)
class ServerSection:
    """This node: its files, its contexts, where it listens, how it logs."""

    node_id: int = setting(0, integer(minimum=0, maximum=MAX_NODE_ID), doc="this node's id in event ids")
    data_dir: Path | None = setting(None, _data_dir, always=True, doc="where the node keeps its files")
    contexts: Mapping[Path, Location] = setting(
        factory=dict,
        read=_context_paths,
        always=True,
        eq=False,
        doc="context definition files or directories",
    )
    listen: tuple[str, int] | None = setting(None, _listen, always=True, doc="host:port of the network API")
    log_format: str = setting("text", choice(*LOG_FORMATS), doc="text or json log lines")
    metrics: str = setting("observer", choice(*METRICS_ACCESS), doc="who may read /metrics")


@section("history")
@attrs.frozen(kw_only=True)
class HistorySection:
    """The history database, its writer and the purge."""

    database_url: str | None = setting(
        None, text(nullable=True), doc="SQLAlchemy URL; default SQLite in data_dir"
    )
    default_expiration: timedelta = setting(DEFAULT_EXPIRATION, duration(), doc="how long events live")
    durability: str = setting("commit", _durability, doc="commit or fsync")
    writer_batch_size: int = setting(500, integer(minimum=1), key="writer.batch_size")
    writer_flush_interval: timedelta = setting(
        timedelta(milliseconds=5), duration(positive=False), key="writer.flush_interval"
    )
    writer_queue_size: int = setting(10_000, integer(minimum=1), key="writer.queue_size")
    purge_interval: timedelta = setting(timedelta(hours=1), duration(), key="purge.interval")
    purge_batch_size: int = setting(5000, integer(minimum=1), key="purge.batch_size")


@section("delivery")
@attrs.frozen(kw_only=True)
class DeliverySection:
    """Delivery to subscriptions."""

    queue_size: int = setting(1000, integer(minimum=1), doc="the queue of a queued subscription")


@section(
    "expiration",
    read=items(
        where="expiration rule {index}",
        unique=("mask", "event"),
        duplicate="a rule for mask {mask!r} and event {event!r} already exists at {first}; "
        "remove one of them",
    ),
)
@attrs.frozen(kw_only=True)
class RuleOrigin:
    """An expiration rule (a list item of ``expiration:``) and where it is written,
    for the checks across files."""

    mask: str = setting(read=mask(), required=True)
    event: str = setting("*", name("event name", star=True))
    expiration: timedelta = setting(read=duration(), required=True)
    location: Location = located()
    event_location: Location = located("event")

    @property
    def rule(self) -> ExpirationRule:
        return ExpirationRule(mask=self.mask, event=self.event, expiration=self.expiration)


@section("users", read=named_items(what="user name", where="user {name!r}"))
@attrs.frozen(kw_only=True)
class UserConfig:
    """A configured user. ``password_hash`` is an opaque scrypt string set by the server."""

    name: str = setting(read=item_name(), always=True)
    password_hash: str | None = setting(None, text(nullable=True))
    grants: Grants = setting(factory=Grants, read=_grants, eq=False)


_USER_NAME = name("user name")  # (inside ControllerConfig, ``name`` is its field)


@section(
    "controllers",
    read=items(
        where="controller {index}",
        rename=("name", "controller {!r}"),
        unique=("name",),
        duplicate="controller {name!r} is already defined at {first}; give each controller its own name",
        duplicate_at="name",
    ),
)
@attrs.frozen(kw_only=True)
class ControllerConfig:
    """A device controller plugin: ``target`` is ``module:attribute``, not imported here.

    ``principal``: the user the controller fires as (its grants checked on
    every fire); None: the controller's name, trusted in-process code.
    """

    name: str = setting(read=name("controller name"), required=True)
    target: str = setting(read=_target, key="class", required=True)
    principal: str | None = setting(None, _USER_NAME)
    options: dict[str, Any] = setting(factory=dict, read=mapping_value(), eq=False)


@section("auth")
@attrs.frozen(kw_only=True)
class AuthConfig:
    """Sessions, login back-off and the WebSocket ``Origin`` check (``auth`` in the file).

    ``allowed_origins`` empty: only the server's own host (and clients that
    send no ``Origin``); ``"*"`` allows every origin.
    """

    session_lifetime: timedelta = setting(timedelta(hours=12), duration())
    allowed_origins: tuple[str, ...] = setting((), _origins)
    user_failures: int = setting(5, integer(minimum=1), key="throttle.user_failures")
    address_failures: int = setting(20, integer(minimum=1), key="throttle.address_failures")
    token_failures: int = setting(20, integer(minimum=1), key="throttle.token_failures")
    first_delay: timedelta = setting(timedelta(seconds=1), duration(), key="throttle.first_delay")
    max_delay: timedelta = setting(timedelta(minutes=15), duration(), key="throttle.max_delay")
    forget_after: timedelta = setting(timedelta(hours=1), duration(), key="throttle.forget_after")


# Sections declared in modules of their own register when imported: import them here.
from linkserver.loading import alarm_config as _alarm_config  # noqa: E402, F401 - registers alarms:
from linkserver.loading import bridges as _bridges  # noqa: E402, F401 - registers bridges:
from linkserver.loading import cluster as _cluster  # noqa: E402, F401 - registers cluster:
from linkserver.loading import rules as _rules  # noqa: E402, F401 - registers rules:

TOP_KEYS = tuple(SECTIONS)


def _default_users() -> dict[str, UserConfig]:
    return {"admin": UserConfig(name="admin", grants=Grants({"**": Permission.ADMIN}))}


@attrs.frozen(kw_only=True)
class ServerConfig:
    """Everything the server needs besides the context definitions. Paths are absolute.

    ``sections`` holds every section read, by key (the ones above are also
    spread into the flat fields here); a section added later is read from
    there: ``config.sections["bridges"]``.
    """

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
    sections: Mapping[str, Any] = attrs.field(factory=dict, eq=False)
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
    if doc is None:
        return ConfigResult(None, (), {})
    reading = Reading(
        doc,
        Path(os.path.abspath(path)).parent,
        data_dir=Path(data_dir) if data_dir is not None else None,
        listen=listen,
    )
    top = as_mapping(doc, doc.root, TOP)
    sections = read_sections(top, reading)
    server: ServerSection = sections["server"]
    history: HistorySection = sections["history"]
    rules: tuple[RuleOrigin, ...] = sections["expiration"]
    contexts = dict(server.contexts)
    if len(problems) > before:
        return ConfigResult(None, rules, contexts)
    assert server.data_dir is not None
    values: dict[str, Any] = {
        "node_id": server.node_id,
        "data_dir": server.data_dir,
        "context_paths": tuple(contexts),
        "log_format": server.log_format,
        "metrics_access": server.metrics,
        "database_url": history.database_url or sqlite_url(server.data_dir),
        "default_expiration": history.default_expiration,
        "history_durability": history.durability,
        "writer_batch_size": history.writer_batch_size,
        "writer_flush_interval": history.writer_flush_interval,
        "writer_queue_size": history.writer_queue_size,
        "purge_interval": history.purge_interval,
        "purge_batch_size": history.purge_batch_size,
        "delivery_queue_size": sections["delivery"].queue_size,
        "expiration": ExpirationTable((r.rule for r in rules), default=history.default_expiration),
        "controllers": sections["controllers"],
        "auth": sections["auth"],
        "sections": sections,
        "source": Path(os.path.abspath(path)),
    }
    if server.listen is not None:
        values["listen_host"], values["listen_port"] = server.listen
    if "users" in top:
        values["users"] = sections["users"]
    return ConfigResult(ServerConfig(**values), rules, contexts)
