"""Fixtures of the shell tests; the machinery lives in shell_helpers.py."""

from shell_helpers import client, env, live, make_live, sh  # noqa: F401 - fixtures
