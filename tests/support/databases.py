"""The machine's real PostgreSQL and Redis for the scale-out tests: a throwaway schema per use.

Both are required (the scale-out mode is a hard requirement): unreachable, the tests fail naming
them. Override the addresses with LLMOPS_TEST_PG_URL / LLMOPS_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("LLMOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LLMOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
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


def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable (required by the scale-out tests): {exc}")
    finally:
        client.close()
    return REDIS_URL
