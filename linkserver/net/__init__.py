"""The network API: HTTP + JSON and WebSocket sessions over a LinkServer (docs/protocol.md).

Names are imported on first use, so that ``python -m linkserver.net.serve``
and ``import linkserver.net.auth`` stay light.
"""

from __future__ import annotations

from linkserver._lazy import lazy_exports

_WHERE = {
    "serve": "linkserver.net.serve",
    "create_app": "linkserver.net.app",
    "Gateway": "linkserver.net.gateway",
    "Limits": "linkserver.net.protocol",
    "Session": "linkserver.net.protocol",
    "Authenticator": "linkserver.net.auth",
    "hash_password": "linkserver.net.auth",
    "verify_password": "linkserver.net.auth",
    "create_token": "linkserver.net.auth",
    "revoke_token": "linkserver.net.auth",
    "ensure_admin_credentials": "linkserver.net.auth",
    "read_admin_credentials": "linkserver.net.auth",
    "AuthenticationFailed": "linkserver.core.errors",
    "BadRequest": "linkserver.core.errors",
    "NotFound": "linkserver.core.errors",
    "TooLarge": "linkserver.core.errors",
}


__getattr__, __dir__ = lazy_exports("linkserver.net", _WHERE, globals())

__all__ = [
    # Running the API
    "serve",
    "create_app",
    "Gateway",
    "Limits",
    # The WebSocket session, without a socket
    "Session",
    # Authentication
    "Authenticator",
    "hash_password",
    "verify_password",
    "create_token",
    "revoke_token",
    "ensure_admin_credentials",
    "read_admin_credentials",
    # Errors of the network layer
    "AuthenticationFailed",
    "BadRequest",
    "NotFound",
    "TooLarge",
]
