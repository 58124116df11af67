"""Context definitions with alarms, shared by the alarm tests of the server, API, CLI, shell and web."""

from __future__ import annotations

from pathlib import Path

from linkserver.core.catalog import Catalog
from linkserver.loading import load_contexts
from linkserver.loading.shipped import SHIPPED_CONTEXTS

NET = """
templates:
  switch:
    events:
      linkDown:
        level: WARNING
        persistent: true
        reduction_key: "{context}:{name}:{data.ifIndex}"
        message: "interface {data.ifIndex} of {context} is down ({level})"
        format: {fields: [{name: ifIndex, type: integer}]}
      linkUp:
        persistent: true
        clears: linkDown
        format: {fields: [{name: ifIndex, type: integer}]}
      fanFailed:
        level: ERROR
        persistent: true
        reduction_key: "{context}:fan"
        auto_clear: 1m
        alarm_level: last
      powerLost:
        level: ERROR
        persistent: true
        reduction_key: "power:{data.site}"
        format: {fields: [{name: site, type: string, min: 1}]}
      powerBack:
        persistent: true
        clears: powerLost
        format: {fields: [{name: site, type: string, min: 1}]}
contexts:
  net:
    templates: [standard]
    child_templates: [standard, switch]
"""


def alarm_catalog(directory: Path) -> Catalog:
    """The shipped contexts plus ``net`` (switches: linkDown/linkUp, fanFailed,
    powerLost/powerBack: one alarm per site across switches) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "net.yaml").write_text(NET)
    return load_contexts([SHIPPED_CONTEXTS, directory / "net.yaml"])
