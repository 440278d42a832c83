"""Fixtures: SQLite per test, a throwaway PostgreSQL schema, the shared Redis.

PostgreSQL and Redis are *required* (scale-out mode is a hard requirement):
when they are unreachable the tests fail with a message naming them.
Override with LLMOPS_TEST_PG_URL / LLMOPS_TEST_REDIS_URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prompt_test_helpers import OpenRegistry

from prompts.registry import PromptRegistry
from tests.support.databases import pg_schema
from tests.support.databases import redis_url as shared_redis_url


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("prompts_test") as url:
        yield url


@pytest.fixture
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def open_registry() -> Iterator[OpenRegistry]:
    """Factory that closes every registry it opened; the poller is off unless asked for."""
    opened: list[PromptRegistry] = []

    def factory(url: str, **kwargs: Any) -> PromptRegistry:
        kwargs.setdefault("poll_interval_s", 0)
        registry = PromptRegistry(url, **kwargs)
        opened.append(registry)
        return registry

    yield factory
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(db_url: str, open_registry: OpenRegistry) -> PromptRegistry:
    return open_registry(db_url)


@pytest.fixture
def sqlite_registry(sqlite_url: str, open_registry: OpenRegistry) -> PromptRegistry:
    return open_registry(sqlite_url)
