"""Fixtures of the cluster tests: a PostgreSQL schema of the test's own, the RabbitMQ URL.

Other helpers' tests use the same PostgreSQL and RabbitMQ at the same time: every
schema, exchange and queue a test makes has a unique name and is removed after it.
Set and unreachable: the tests fail, they are not skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get("LINKSERVER_TEST_POSTGRES_URL")
RABBITMQ_URL = os.environ.get("LINKSERVER_TEST_RABBITMQ_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema; the schema is dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("LINKSERVER_TEST_POSTGRES_URL is not set")
    schema = f"lscluster_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def rabbitmq_url() -> str:
    if not RABBITMQ_URL:
        pytest.skip("LINKSERVER_TEST_RABBITMQ_URL is not set")
    return RABBITMQ_URL
