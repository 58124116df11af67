"""Which local server a client given no address talks to, and whose admin credentials it may use.

Looked for in this order, the first that answers wins:

1. ``$LINKSERVER_DATA_DIR``: the server whose runtime file is in that directory;
2. the local configuration (``$LINKSERVER_CONFIG`` or ``config/linkserver.yaml``
   in the working directory): the server on its data directory;
3. ``./data``, where a server given no configuration keeps its data;
4. the user's list of running servers (see :mod:`linkserver.runtime`):
   the one server that runs; with several, the caller must choose
   (:class:`SeveralServers` lists them).

A data directory found in 1 or 2 counts even when its server is not
running: its credentials file still says where it served last.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from linkserver.core.errors import LinkServerError
from linkserver.runtime import CONFIG_ENV, DATA_DIR_ENV, RuntimeRecord, read_runtime, running_servers

LOCAL_CONFIG = Path("config") / "linkserver.yaml"


class SeveralServers(LinkServerError, ValueError):
    """Several local servers run and nothing says which one is meant."""

    def __init__(self, records: list[RuntimeRecord]) -> None:
        listed = "; ".join(f"{r.url} (data in {r.data_dir})" for r in records)
        super().__init__(
            f"{len(records)} LinkServers are running here: {listed}; choose one with --url "
            f"(or $LINKSERVER_URL) or --data-dir (or ${DATA_DIR_ENV})"
        )
        self.records = records


@attrs.frozen
class LocalServer:
    """A local data directory and, when its server runs, the server's address."""

    data_dir: Path
    url: str | None = None


def find_local_server() -> LocalServer | None:
    """The local server the client means (see the module docstring), or None."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return _at(Path(explicit))
    configured = _configured_data_dir()
    if configured is not None:
        return _at(configured)
    here = read_runtime(Path("data"))
    if here is not None:
        return LocalServer(here.data_dir, here.url)
    records = running_servers()
    if len(records) > 1:
        raise SeveralServers(records)
    if records:
        return LocalServer(records[0].data_dir, records[0].url)
    return None


def _at(data_dir: Path) -> LocalServer:
    record = read_runtime(data_dir)
    return LocalServer(data_dir, record.url if record is not None else None)


def _configured_data_dir() -> Path | None:
    path = Path(os.environ.get(CONFIG_ENV) or LOCAL_CONFIG)
    if not path.exists():
        return None
    try:
        from linkserver.loading.config import load_config

        return Path(load_config(path).data_dir)
    except (LinkServerError, OSError):
        return None
