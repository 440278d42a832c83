"""`Governance` as the app builds it: the request-path calls end to end, restarts, two replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from governance_test_helpers import wait_until

from gateway.governance import Governance, GovernanceSettings, KeySpec, LimitRejected, RequestRecord
from gateway.governance.local_limiter import LocalLimiter
from gateway.governance.records import RequestQuery
from gateway.governance.redis_limiter import RedisLimiter
from gateway.governance.settings import Budget

PRICES = {"m1": {"input": 1.0, "output": 2.0}}
Build = Callable[..., Any]


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Build]:
    opened: list[Governance] = []

    async def factory(url: str, **settings: Any) -> Governance:
        settings.setdefault("prices", PRICES)
        gov = Governance.build(GovernanceSettings(database_url=url, **settings), data_dir=tmp_path)
        await gov.start()
        opened.append(gov)
        return gov

    yield factory
    for gov in opened:
        await gov.aclose()


async def _call(gov: Governance, secret: str, output_tokens: int = 300) -> float:
    """What the pipeline does around one chat completion."""
    principal = await gov.authenticate(secret)
    assert principal is not None
    reservation = await gov.admit(principal, model="m1", prompt_tokens=100, max_tokens=400)
    cost = await gov.settle(reservation, input_tokens=100, output_tokens=output_tokens)
    gov.log(RequestRecord(
        request_id="r", created_at=datetime.now(UTC), endpoint="/v1/chat/completions", status=200, latency_ms=3.0,
        key_id=principal.key_id, model="m1", input_tokens=100, output_tokens=output_tokens, cost=cost,
    ))
    return cost


async def test_the_request_path_end_to_end(db_url: str, build: Build) -> None:
    gov = await build(db_url)
    assert isinstance(gov.limiter, LocalLimiter)
    secret = gov.keys.create(KeySpec(name="app", rpm=10), actor="t").key
    cost = await _call(gov, secret)
    assert cost == pytest.approx(100e-6 + 600e-6)
    assert gov.requests.flush()
    [row] = gov.requests.query(RequestQuery()).data
    assert row["cost"] == pytest.approx(cost) and row["output_tokens"] == 300


async def test_budgets_survive_a_restart(db_url: str, build: Build) -> None:
    first = await build(db_url)
    key = first.keys.create(KeySpec(name="b", budget=Budget(amount=0.002, period="month")), actor="t")
    await _call(first, key.key, output_tokens=400)  # 0.0009
    await _call(first, key.key, output_tokens=400)  # 0.0018 spent: the next worst case does not fit
    principal = await first.authenticate(key.key)
    with pytest.raises(LimitRejected):
        await first.admit(principal, model="m1", prompt_tokens=100, max_tokens=400)  # type: ignore[arg-type]
    await first.aclose()

    second = await build(db_url)
    principal = await second.authenticate(key.key)
    assert principal is not None
    with pytest.raises(LimitRejected) as rejected:
        await second.admit(principal, model="m1", prompt_tokens=100, max_tokens=400)
    assert rejected.value.code == "budget_exceeded"
    await second.admit(principal, model="m1", prompt_tokens=10, max_tokens=10)  # a small one still fits


async def test_rails_and_retrieval_usage_is_limited_and_persisted(sqlite_url: str, build: Build) -> None:
    gov = await build(sqlite_url, teams={"search": {"tpm": 1000}})
    secret = gov.keys.create(KeySpec(name="r", team="search"), actor="t").key
    principal = await gov.authenticate(secret)
    assert principal is not None
    await gov.record_usage(principal, tokens=800, cost=0.01)
    with pytest.raises(LimitRejected) as rejected:
        await gov.admit(principal, model="m1", prompt_tokens=100, max_tokens=400)
    assert rejected.value.scope == "team"
    assert gov.requests.flush()
    assert gov.requests.store.spent("team:search", None) == (800, 10_000_000)


async def test_two_replicas_share_limits_and_revocations(pg_url: str, redis_prefix: str, redis_url: str,
                                                         build: Build) -> None:
    replicas = [await build(pg_url, redis_url=redis_url, redis_prefix=redis_prefix, key_cache_ttl_s=3600)
                for _ in range(2)]
    assert all(isinstance(r.limiter, RedisLimiter) for r in replicas)
    secret = replicas[0].keys.create(KeySpec(name="shared", rpm=7), actor="t").key
    principals = [await r.authenticate(secret) for r in replicas]

    async def attempt(i: int) -> bool:
        try:
            await replicas[i % 2].admit(principals[i % 2], model="m1", prompt_tokens=1, max_tokens=1)  # type: ignore[arg-type]
            return True
        except LimitRejected:
            return False

    assert sum(await asyncio.gather(*(attempt(i) for i in range(50)))) == 7

    key_id = principals[0].key_id  # type: ignore[union-attr]
    replicas[0].keys.revoke(key_id, actor="t")

    def forgotten() -> bool:
        return asyncio.run_coroutine_threadsafe(replicas[1].authenticate(secret), loop).result() is None

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(wait_until, forgotten, 15.0, "replica 2 to drop the revoked key")
