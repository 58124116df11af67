"""Loading: YAML files -> core objects, and ``linkserver check``.

Every problem is reported as ``file:line:column: message``; all problems of
all files are collected and raised together as one
:class:`~linkserver.core.errors.ConfigError`.
"""

from linkserver.loading.check import check_files, load_all
from linkserver.loading.config import (
    ControllerConfig,
    ServerConfig,
    UserConfig,
    default_config_path,
    load_config,
    load_config_text,
)
from linkserver.loading.contexts import load_contexts, load_contexts_text

__all__ = [
    # the server configuration
    "ServerConfig",
    "UserConfig",
    "ControllerConfig",
    "load_config",
    "load_config_text",
    "default_config_path",
    # context definitions
    "load_contexts",
    "load_contexts_text",
    # both, checked together
    "load_all",
    "check_files",
]
