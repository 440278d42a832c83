"""Fixtures: SQLite per test, a throwaway PostgreSQL schema, the shared Redis.

PostgreSQL and Redis are *required* (scale-out mode is a hard requirement):
when they are unreachable the tests fail with a message naming them.
Override with PROMPTS_TEST_PG_URL / PROMPTS_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from prompt_test_helpers import OpenRegistry
from sqlalchemy.engine import make_url

from prompts.registry import PromptRegistry

PG_URL = os.environ.get("PROMPTS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PROMPTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"prompts_test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        shown = make_url(PG_URL).render_as_string(hide_password=True)
        pytest.fail(f"PostgreSQL at {shown} is not reachable (required by the scale-out tests): {exc}")
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable (required by the invalidation tests): {exc}")
    finally:
        client.close()
    return REDIS_URL


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
