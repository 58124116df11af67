"""Alembic migrations of the history schema; run them with :mod:`linkserver.history.migrate`."""
