"""Loading configuration and contexts together, and ``linkserver check``.

Both read every file, collect every problem and check across files: an
expiration rule must name an event some context defines (or ``*``), and not
one that is only ever non-persistent, since the table never makes an event
persistent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from yaml.nodes import MappingNode, ScalarNode

from linkserver.core.catalog import Catalog
from linkserver.loading.bridges import check_bridges
from linkserver.loading.config import TOP_KEYS as CONFIG_KEYS
from linkserver.loading.config import (
    ConfigResult,
    ServerConfig,
    config_source,
    read_config,
)
from linkserver.loading.contexts import TOP_KEYS as CONTEXT_KEYS
from linkserver.loading.contexts import CatalogBuilder, context_files
from linkserver.loading.problems import Location, Problems, display_name, suggest
from linkserver.loading.rules import check_rules
from linkserver.loading.yamlnodes import Document, collection_paused, read

CONFIG_NAMES = ("linkserver", "config")
"""File names (without suffix) always checked as a configuration."""


def check_files(paths: Sequence[Path] = (), *, on_file: Callable[[Path], None] | None = None) -> list[str]:
    """Every problem of the given files as ``file:line:column: message``; empty when all are valid.

    ``paths`` are files or directories (their ``*.yaml``/``*.yml``). A file
    named ``linkserver.yaml`` or ``config.yaml``, a file in a ``config``
    directory, or a file whose top-level keys are configuration keys
    (``server``, ``history``, ``users``...) is checked as a configuration,
    together with the context paths it names; other files as context files.
    Without paths, the configuration the server would use (see
    :func:`~linkserver.loading.config.config_source`) and its contexts are checked.
    ``on_file(path)`` is called before each file is read (for progress).
    """
    with collection_paused():
        return _check(paths, on_file)


def _check(paths: Sequence[Path], on_file: Callable[[Path], None] | None) -> list[str]:
    problems = Problems()
    if not paths:
        _load(None, problems, on_file=on_file)
        return problems.messages()
    results: list[ConfigResult] = []
    builder = CatalogBuilder(problems)
    complete = True
    files = _expand(paths)
    for path in files:
        if on_file is not None:
            on_file(path)
        doc = read(path, problems)
        if doc is not None and _is_config(path, doc):
            results.append(read_config(doc, path, problems))
        elif doc is not None:
            builder.add(doc)  # one file's nodes at a time: the builder keeps what it needs
        else:
            complete = False
    named = [item for result in results for item in result.context_locations.items()]
    complete &= _add_named(named, builder, problems, skip={_normal(path) for path in files}, on_file=on_file)
    catalog = builder.build()
    for result in results:
        _check_rules(result, builder, complete=complete, problems=problems)
        _check_alert_rules(result, catalog, complete=complete, problems=problems)
    return problems.messages()


def load_all(
    config_path: Path | None = None, *, data_dir: Path | str | None = None, listen: str | None = None
) -> tuple[ServerConfig, Catalog]:
    """The configuration and the catalog of the contexts it names; raises ConfigError listing every problem.

    ``config_path=None`` means :func:`~linkserver.loading.config.config_source`
    (the shipped configuration and contexts when there is no other);
    ``data_dir`` and ``listen`` replace the file's (see :func:`load_config`).
    """
    problems = Problems()
    with collection_paused():
        config, catalog = _load(config_path, problems, data_dir=data_dir, listen=listen)
    problems.raise_if_any()
    assert config is not None
    return config, catalog


def _load(
    path: Path | None,
    problems: Problems,
    *,
    data_dir: Path | str | None = None,
    listen: str | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> tuple[ServerConfig | None, Catalog]:
    source, implied = config_source(path)
    if on_file is not None:
        on_file(source)
    result = read_config(
        read(source, problems), source, problems, data_dir=data_dir or implied, listen=listen
    )
    builder = CatalogBuilder(problems)
    complete = _add_named(result.context_locations.items(), builder, problems, on_file=on_file)
    catalog = builder.build()
    _check_rules(result, builder, complete=complete, problems=problems)
    _check_alert_rules(result, catalog, complete=complete, problems=problems)
    return result.config, catalog


def _add_named(
    named: Iterable[tuple[Path, Location]],
    builder: CatalogBuilder,
    problems: Problems,
    skip: set[Path] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> bool:
    """Read the context paths a configuration names into ``builder``, one file at a time.

    A missing path is reported where it is named; returns whether every file
    could be read (if not, rules naming events are not reported as undefined).
    """
    seen = set(skip or ())
    complete = True
    for path, location in named:
        if not path.exists():
            problems.add(
                location,
                f"context path {display_name(path)!r} does not exist; "
                "fix 'contexts' in 'server' or create it",
            )
            complete = False
            continue
        for file in context_files([path]):
            if _normal(file) not in seen:
                seen.add(_normal(file))
                if on_file is not None:
                    on_file(file)
                doc = read(file, problems)
                if doc is None:
                    complete = False
                else:
                    builder.add(doc)
    return complete


def _check_rules(
    result: ConfigResult, builder: CatalogBuilder, *, complete: bool, problems: Problems
) -> None:
    """Expiration rules against the definitions: each named event exists and may be persistent."""
    for origin in result.rules:
        event = origin.rule.event
        if event == "*":
            continue
        kinds = builder.persistence.get(event)
        if kinds is None:
            if complete:
                problems.add(
                    origin.event_location,
                    f"expiration rule for event {event!r}, which no context defines"
                    + suggest(event, builder.persistence, "defined events"),
                )
        elif kinds == {False}:
            problems.add(
                origin.event_location,
                f"expiration for non-persistent event {event!r} would make it persistent; "
                "the table cannot do that: set persistent: true in its definition or remove this rule",
            )


def _check_alert_rules(result: ConfigResult, catalog: Catalog, *, complete: bool, problems: Problems) -> None:
    """Alert rules (the ``rules:`` section) and bridges' ``select`` filters against the contexts
    (loading/rules.py, loading/bridges.py)."""
    if result.config is not None:
        check_rules(result.config.sections.get("rules", ()), catalog, problems, complete=complete)
        check_bridges(result.config.sections.get("bridges", ()), catalog, problems)


def _expand(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(context_files([path]))
        else:
            files.append(path)  # a missing file is reported when it is read
    return files


def _is_config(path: Path, doc: Document) -> bool:
    if Path(os.path.abspath(path)).parent.name == "config" or path.stem in CONFIG_NAMES:
        return True
    root = doc.root
    keys = (
        {key.value for key, _ in root.value if isinstance(key, ScalarNode)}
        if isinstance(root, MappingNode)
        else set()
    )
    return bool(keys & set(CONFIG_KEYS)) and not keys & set(CONTEXT_KEYS)


def _normal(path: Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))
