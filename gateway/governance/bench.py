"""Hot-path cost of governance: key lookup + limit check + log enqueue, per request.

    python -m gateway.governance.bench [--n 20000] [--redis-url redis://127.0.0.1:6379/0 | --no-redis]

Runs against a throw-away SQLite database; with Redis it uses a private key prefix and deletes it.
The key has rpm, tpm and a budget and its team has limits too, so every check touches two subjects
(the worst case). Settling (after the response) is timed apart: it is not on the request's path.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.governance.models import KeySpec
from gateway.governance.records import RequestRecord
from gateway.governance.settings import Budget, GovernanceSettings, TeamLimits
from gateway.governance.state import Governance


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(settings: GovernanceSettings, data_dir: Path, n: int) -> dict[str, list[float]]:
    gov = Governance.build(settings, data_dir=data_dir)
    await gov.start()
    try:
        secret = gov.keys.create(
            KeySpec(name="bench", team="bench", rpm=10**9, tpm=10**12, budget=Budget(amount=10**6, period="month")),
            actor="bench",
        ).key
        timings: dict[str, list[float]] = {k: [] for k in ("lookup", "limits", "enqueue", "total", "settle")}
        for i in range(n + n // 10):
            t0 = time.perf_counter()
            principal = await gov.authenticate(secret)
            assert principal is not None
            t1 = time.perf_counter()
            reservation = await gov.admit(principal, model="m", prompt_tokens=50, max_tokens=200)
            t2 = time.perf_counter()
            gov.log(RequestRecord(
                request_id=f"r{i}", created_at=datetime.now(UTC), endpoint="/v1/chat/completions", status=200,
                latency_ms=1.0, key_id=principal.key_id, team="bench", model="m", input_tokens=50,
                output_tokens=100, cost=0.0,
            ))
            t3 = time.perf_counter()
            await gov.settle(reservation, input_tokens=50, output_tokens=100)
            t4 = time.perf_counter()
            if i >= n // 10:  # the first tenth warms caches and connections
                for name, value in (("lookup", t1 - t0), ("limits", t2 - t1), ("enqueue", t3 - t2),
                                    ("total", t3 - t0), ("settle", t4 - t3)):
                    timings[name].append(value * 1e6)
            if i % 2000 == 0:
                await asyncio.sleep(0)  # let the log writer's thread get the GIL now and then
        return timings
    finally:
        await gov.aclose()


def _report(title: str, timings: dict[str, list[float]]) -> None:
    print(f"\n{title}  (µs, n={len(next(iter(timings.values())))})")
    print(f"  {'step':<10}{'p50':>9}{'p99':>9}{'mean':>9}")
    for name, samples in timings.items():
        print(f"  {name:<10}{_pct(samples, 0.5):>9.1f}{_pct(samples, 0.99):>9.1f}{statistics.fmean(samples):>9.1f}")


async def _ping(url: str, n: int) -> dict[str, list[float]]:
    """The floor: one bare round trip through the same client library."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        samples = []
        for i in range(n + n // 10):
            t0 = time.perf_counter()
            await client.ping()
            if i >= n // 10:
                samples.append((time.perf_counter() - t0) * 1e6)
        return {"ping": samples}
    finally:
        await client.aclose()


def _redis_reachable(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _cleanup(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args(argv)
    loop_factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        loop_factory = asyncio.new_event_loop
    teams = {"bench": TeamLimits(rpm=10**9, tpm=10**12, budget=Budget(amount=10**6, period="month"))}
    with tempfile.TemporaryDirectory() as tmp:
        base = GovernanceSettings(database_url=f"sqlite:///{tmp}/bench.db", teams=teams)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            _report("in-process limits", runner.run(_run(base, Path(tmp), args.n)))
        if args.no_redis:
            return 0
        if not _redis_reachable(args.redis_url):
            print(f"\nRedis at {args.redis_url} is not reachable: skipped the Redis run")
            return 0
        prefix = f"llmops-bench:{uuid.uuid4().hex[:8]}"
        redis_settings = base.model_copy(update={"redis_url": args.redis_url, "redis_prefix": prefix})
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                _report(f"Redis limits ({args.redis_url})", runner.run(_run(redis_settings, Path(tmp), args.n)))
                _report("Redis PING, for comparison", runner.run(_ping(args.redis_url, args.n)))
        finally:
            _cleanup(args.redis_url, prefix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
