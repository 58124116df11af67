"""Keeps every test run away from the user's own LinkServer state.

Servers that tests start announce themselves in ``$XDG_STATE_HOME`` (see
linkserver.server.runtime); a directory of this run's own keeps them from
the user's list, from other runs on the same machine, and the other way round.
"""

from __future__ import annotations

import os
import tempfile

os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="linkserver-test-state-")
for name in ("LINKSERVER_DATA_DIR", "LINKSERVER_LISTEN", "LINKSERVER_CONFIG"):
    os.environ.pop(name, None)
