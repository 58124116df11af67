"""The standard contexts and the default configuration, shipped in the package.

They live in ``linkserver/defaults/`` (package data; the checkout's
``contexts/`` and ``config/`` are links to them, so there is one copy).
The server uses them when it is given no configuration;
:func:`write_editable_copy` (``linkserver init DIR``) copies them out to edit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from linkserver.core.errors import LinkServerError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "defaults"
SHIPPED_CONFIG = SHIPPED_DIR / "config" / "linkserver.yaml"
SHIPPED_CONTEXTS = SHIPPED_DIR / "contexts"


class DirectoryNotEmpty(LinkServerError, FileExistsError):
    """``linkserver init`` would overwrite files that exist."""


def shipped_files() -> list[Path]:
    """Every shipped file, relative to :data:`SHIPPED_DIR` (``config/...``, ``contexts/...``)."""
    return sorted(
        path.relative_to(SHIPPED_DIR)
        for folder in (SHIPPED_CONFIG.parent, SHIPPED_CONTEXTS)
        for path in folder.iterdir()
        if path.suffix in (".yaml", ".yml")
    )


def write_editable_copy(target: Path, *, force: bool = False) -> list[Path]:
    """Copy the shipped ``config/`` and ``contexts/`` into ``target``; returns the files written.

    The copy is self-contained: its configuration names ``../contexts`` and
    keeps its data in ``target/data``. Existing files are left alone and
    reported as :class:`DirectoryNotEmpty` unless ``force``.
    """
    target = Path(target)
    files = shipped_files()
    existing = [target / name for name in files if (target / name).exists()]
    if existing and not force:
        names = ", ".join(str(path) for path in existing)
        raise DirectoryNotEmpty(
            f"{names} exist{'s' if len(existing) == 1 else ''} already; "
            "edit them, choose another directory, or overwrite them with --force"
        )
    written = []
    for name in files:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIPPED_DIR / name, destination)
        written.append(destination)
    return written
