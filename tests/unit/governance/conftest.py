"""Fixtures: SQLite per test, a throwaway PostgreSQL schema, a private key prefix on the shared Redis.

PostgreSQL and Redis are required (the scale-out mode is a hard requirement): when they are
unreachable the tests fail naming them. Override with LLMOPS_TEST_PG_URL / LLMOPS_TEST_REDIS_URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.databases import pg_schema
from tests.support.databases import redis_url as shared_redis_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'governance.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("governance_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix private to this test; every key under it is deleted afterwards."""
    prefix = f"llmops-test:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
