"""Limits and budgets: exact under concurrency, in process and across two replicas sharing Redis."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import AsyncIterator, Callable

import pytest
from governance_test_helpers import FakeClock

from gateway import errors
from gateway.auth import Principal
from gateway.governance.limiter import Limiter, LimitRejected, Reservation, Rules, duration
from gateway.governance.local_limiter import LocalLimiter
from gateway.governance.pricing import PriceTable, to_nano
from gateway.governance.quota import Limits
from gateway.governance.redis_limiter import RedisLimiter
from gateway.governance.settings import Budget, Price, TeamLimits

START = 1_767_225_610.0  # 2026-01-01T00:00:10Z: 50 s left in the minute
PRICES = PriceTable({"m": Price(input=1.0, output=2.0)})  # 1000 / 2000 nano-USD per token
EST_COST = 100 * 1000 + 400 * 2000  # prompt 100, max_tokens 400


def key(key_id: str = "vk-a", *, team: str | None = None, **limits: object) -> Principal:
    return Principal(key_id=key_id, role="client", name=key_id, team=team, limits=Limits(**limits))  # type: ignore[arg-type]


def rules(teams: dict[str, TeamLimits] | None = None, default_max_tokens: int = 400) -> Rules:
    return Rules(prices=PRICES, teams=teams or {}, default_max_tokens=default_max_tokens)


MakeLimiter = Callable[..., Limiter]


@pytest.fixture(params=["local", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    """Builds limiters on one counter store: for Redis each call is a separate replica."""
    opened: list[Limiter] = []
    local: dict[int, LocalLimiter] = {}
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")

    def factory(r: Rules, clock: FakeClock) -> Limiter:
        if request.param == "local":
            return local.setdefault(id(clock), LocalLimiter(r, clock=clock))
        limiter = RedisLimiter(url, r, prefix=prefix, clock=clock)
        opened.append(limiter)
        return limiter

    yield factory
    for limiter in opened:
        await limiter.aclose()


async def _try(limiter: Limiter, principal: Principal, **kw: object) -> Reservation | LimitRejected:
    try:
        return await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400, **kw)  # type: ignore[arg-type]
    except LimitRejected as exc:
        return exc


async def test_rpm_is_exact_under_50_concurrent_requests_on_two_replicas(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(START)
    replicas = [make_limiter(rules(), clock), make_limiter(rules(), clock)]
    principal = key(rpm=20)
    results = await asyncio.gather(*(_try(replicas[i % 2], principal) for i in range(50)))
    admitted = [r for r in results if isinstance(r, Reservation)]
    rejected = [r for r in results if isinstance(r, LimitRejected)]
    assert len(admitted) == 20 and len(rejected) == 30
    assert {r.kind for r in rejected} == {"requests"}


def test_rpm_is_exact_with_replicas_on_their_own_threads_and_loops(redis_url: str, redis_prefix: str) -> None:
    clock = FakeClock(START)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def replica() -> None:
        async def main() -> int:
            limiter = RedisLimiter(redis_url, rules(), prefix=redis_prefix, clock=clock)
            try:
                barrier.wait(10)
                results = await asyncio.gather(*(_try(limiter, key(rpm=20)) for _ in range(25)))
                return sum(isinstance(r, Reservation) for r in results)
            finally:
                await limiter.aclose()

        counts.append(asyncio.run(main()))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(counts) == 20


def test_in_process_limits_hold_across_threads_with_their_own_loops() -> None:
    limiter = LocalLimiter(rules(), clock=FakeClock(START))
    principal = key(rpm=20, budget=Budget(amount=0.009, period="day"))  # 10 worst cases fit
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def worker() -> None:
        async def main() -> int:
            barrier.wait(10)
            results = await asyncio.gather(*(_try(limiter, principal) for _ in range(25)))
            return sum(isinstance(r, Reservation) for r in results)

        counts.append(asyncio.run(main()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(counts) == 10


async def _request(limiter: Limiter, principal: Principal, actual_out: int, spent: list[int]) -> bool:
    try:
        reservation = await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    except LimitRejected as exc:
        assert exc.kind == "budget" and exc.code == "budget_exceeded"
        return False
    await asyncio.sleep(random.random() / 100)  # the model call
    cost = await limiter.settle(reservation, input_tokens=100, output_tokens=actual_out)
    spent.append(to_nano(cost))
    return True


async def test_budget_never_overspends_with_50_concurrent_requests_on_two_replicas(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(START)
    budget = Budget(amount=0.05, period="day")  # 50,000,000 nano: 55 worst-case estimates
    replicas = [make_limiter(rules(), clock), make_limiter(rules(), clock)]
    principal = key(budget=budget)
    spent: list[int] = []
    rng = random.Random(7)
    for _ in range(6):  # waves of 50 concurrent requests, until the budget is gone
        await asyncio.gather(*(
            _request(replicas[i % 2], principal, rng.randint(0, 400), spent) for i in range(50)
        ))
    assert sum(spent) <= to_nano(budget.amount)
    # Not exhausted early either: what is left is less than one worst-case request.
    assert to_nano(budget.amount) - sum(spent) < EST_COST
    counter = "key:vk-a:b:d20260101"
    assert await _value(replicas[0], counter) == sum(spent)


async def test_budget_admits_exactly_what_fits_when_requests_cost_their_estimate(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(START)
    replicas = [make_limiter(rules(), clock), make_limiter(rules(), clock)]
    principal = key(budget=Budget(amount=0.01, period="month"))  # 10,000,000 // 900,000 = 11
    spent: list[int] = []
    admitted = await asyncio.gather(*(_request(replicas[i % 2], principal, 400, spent) for i in range(50)))
    assert sum(admitted) == 11 == len(spent)


async def _value(limiter: Limiter, name: str) -> int:
    assert isinstance(limiter, LocalLimiter | RedisLimiter)
    return await limiter.value(name)


async def test_tokens_per_minute_reserve_the_estimate_and_refund_on_settle(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    principal = key(tpm=1000)
    first = await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    second = await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    with pytest.raises(LimitRejected) as rejected:
        await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    assert rejected.value.kind == "tokens" and rejected.value.code == "rate_limit_exceeded"
    await limiter.settle(first, input_tokens=100, output_tokens=50)
    await limiter.settle(second, input_tokens=100, output_tokens=50)
    third = await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    assert third.headers["x-ratelimit-remaining-tokens"] == str(1000 - 300 - 500)


async def test_a_request_larger_than_tpm_says_how_to_fix_it(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    with pytest.raises(LimitRejected) as rejected:
        await limiter.acquire(key(tpm=300), model="m", prompt_tokens=100, max_tokens=400)
    assert "lower max_tokens" in rejected.value.message


async def test_team_limits_are_shared_by_the_team_keys(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules({"search": TeamLimits(rpm=3)}), FakeClock(START))
    a, b = key("vk-a", team="search", rpm=10), key("vk-b", team="search")
    results = [await _try(limiter, p) for p in (a, b, a, b, a)]
    assert [isinstance(r, Reservation) for r in results] == [True, True, True, False, False]
    rejection = results[3]
    assert isinstance(rejection, LimitRejected) and rejection.scope == "team"
    assert "team 'search'" in rejection.message


async def test_windows_roll_over(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(START)
    limiter = make_limiter(rules(), clock)
    principal = key(rpm=1, budget=Budget(amount=0.001, period="day"))  # one request per day fits
    await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    with pytest.raises(LimitRejected) as rpm:
        await limiter.acquire(principal, model="m", prompt_tokens=0, max_tokens=0)
    assert rpm.value.kind == "requests"
    clock.advance(60)
    with pytest.raises(LimitRejected) as budget:
        await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    assert budget.value.kind == "budget"
    assert "resets at 2026-01-02T00:00:00Z" in budget.value.message
    clock.advance(86_400)
    await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)


async def test_headers_on_admission_and_on_429(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    principal = key(rpm=2, tpm=10_000)
    first = await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    assert first.headers == {
        "x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "50s",
        "x-ratelimit-limit-tokens": "10000", "x-ratelimit-remaining-tokens": "9500", "x-ratelimit-reset-tokens": "50s",
    }
    await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    with pytest.raises(errors.RateLimited) as rejected:
        await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    err = rejected.value
    assert err.status == 429 and err.body()["error"]["type"] == "rate_limit_error"
    assert err.body()["error"]["code"] == "rate_limit_exceeded"
    assert err.headers["retry-after"] == "50"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.headers["x-ratelimit-limit-requests"] == "2"
    assert err.headers["x-ratelimit-remaining-tokens"] == "9000"
    assert "2 requests per minute" in err.message and "Retry after 50s" in err.message


async def test_budget_429_is_budget_exceeded_with_a_clear_message(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    with pytest.raises(errors.RateLimited) as rejected:
        await limiter.acquire(key(budget=Budget(amount=0.0001, period="total")), model="m", prompt_tokens=100,
                              max_tokens=400)
    body = rejected.value.body()["error"]
    assert body["code"] == "budget_exceeded" and body["type"] == "rate_limit_error"
    assert "Budget exceeded for key 'vk-a'" in body["message"] and "in total" in body["message"]
    assert "retry-after" not in rejected.value.headers  # a total budget never resets


async def test_rails_and_retrieval_usage_counts(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    principal = key(tpm=1000, budget=Budget(amount=0.001, period="month"))
    await limiter.record_usage(principal, tokens=600, cost=0.0005)
    with pytest.raises(LimitRejected) as rejected:
        await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    assert rejected.value.kind == "tokens"


async def test_seed_starts_a_fresh_counter_but_never_overwrites(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    principal = key(budget=Budget(amount=0.01, period="month"))
    subject = limiter.subjects(principal)[0]
    await limiter.seed(subject, to_nano(0.0095))
    await limiter.seed(subject, 1)
    with pytest.raises(LimitRejected):
        await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)


async def test_unlimited_principals_cost_nothing(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    reservation = await limiter.acquire(key(), model="m", prompt_tokens=10, max_tokens=None)
    assert reservation.plan is None and reservation.headers == {}
    assert reservation.tokens == 10 + 400  # default_max_tokens
    assert await limiter.settle(reservation, input_tokens=10, output_tokens=20) == pytest.approx(50e-6)


async def test_settle_twice_charges_once(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(rules(), FakeClock(START))
    principal = key(budget=Budget(amount=1.0, period="month"))
    reservation = await limiter.acquire(principal, model="m", prompt_tokens=100, max_tokens=400)
    await limiter.settle(reservation, input_tokens=100, output_tokens=10)
    await limiter.settle(reservation, input_tokens=100, output_tokens=10)
    assert await _value(limiter, "key:vk-a:b:m20260101") == 100 * 1000 + 10 * 2000


async def test_redis_down_fails_closed_or_open_as_configured() -> None:
    closed = RedisLimiter("redis://127.0.0.1:1/0", rules(), prefix="x")
    opened = RedisLimiter("redis://127.0.0.1:1/0", rules(), prefix="x", fail_open=True)
    try:
        with pytest.raises(errors.ServiceUnavailable):
            await closed.acquire(key(rpm=1), model="m", prompt_tokens=1, max_tokens=1)
        assert (await opened.acquire(key(rpm=1), model="m", prompt_tokens=1, max_tokens=1)).plan is not None
    finally:
        await closed.aclose()
        await opened.aclose()


def test_durations_read_like_openai() -> None:
    assert [duration(s) for s in (0.0004, 0.25, 1, 12.2, 60, 63)] == ["1ms", "250ms", "1s", "13s", "1m0s", "1m3s"]
    assert math.ceil(49.2) == 50
