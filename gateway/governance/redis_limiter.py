"""Counters in Redis, shared by every replica; each check is one EVALSHA of an atomic script.

Budgets outlive Redis: a marker key says the counters were seeded from the usage table. A Redis
that restarted empty has no marker, so the next check returns -1 and the limiter seeds budgets
again (through the callback the gateway registers) before admitting anything.

Replicas compute windows from their own clocks (NTP-synced clocks keep minute windows aligned)
and pass counter names in, so the scripts stay small and the same rule runs in `limiter.decide`.
All keys of one check must live on one Redis node: with Redis Cluster, put a hash tag in
`governance.redis_prefix` (e.g. "{llmops}").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway import errors
from gateway.governance.limiter import Change, Counter, Limiter, Outcome, Plan, Rules

log = logging.getLogger(__name__)

KINDS = {1: "requests", 2: "tokens", 3: "budget"}

# KEYS: per subject (requests, tokens, budget), then the seeded marker. ARGV: n, tokens, cost, then
# per subject (requests limit, tokens limit, budget limit, window ttl, budget ttl); -1 = uncapped / no ttl.
ACQUIRE = """
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return {-1} end
local n, tokens, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local seen = {}
for i = 1, n do
  local k, a = (i - 1) * 3, 3 + (i - 1) * 5
  local rl, tl, bl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local r, t, b = 0, 0, 0
  if rl >= 0 then r = tonumber(redis.call('GET', KEYS[k + 1]) or '0') end
  if tl >= 0 then t = tonumber(redis.call('GET', KEYS[k + 2]) or '0') end
  if bl >= 0 then b = tonumber(redis.call('GET', KEYS[k + 3]) or '0') end
  if rl >= 0 and r + 1 > rl then return {0, i - 1, 1, r, t, b} end
  if tl >= 0 and t + tokens > tl then return {0, i - 1, 2, r, t, b} end
  if bl >= 0 and b + cost > bl then return {0, i - 1, 3, r, t, b} end
  seen[i] = {r, t, b}
end
local out = {1, -1, 0}
local function add(key, delta, ttl)
  local v = redis.call('INCRBY', key, delta)
  if ttl > 0 and redis.call('TTL', key) == -1 then redis.call('EXPIRE', key, ttl) end
  return v
end
for i = 1, n do
  local k, a = (i - 1) * 3, 3 + (i - 1) * 5
  local rl, tl, bl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local wttl, bttl = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local r, t, b = seen[i][1], seen[i][2], seen[i][3]
  if rl >= 0 then r = add(KEYS[k + 1], 1, wttl) end
  if tl >= 0 and tokens > 0 then t = add(KEYS[k + 2], tokens, wttl) end
  if bl >= 0 and cost > 0 then b = add(KEYS[k + 3], cost, bttl) end
  out[#out + 1] = r
  out[#out + 1] = t
  out[#out + 1] = b
end
return out
"""

# KEYS: counters. ARGV: per counter (delta, ttl).
ADJUST = """
for i = 1, #KEYS do
  local d, ttl = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if d ~= 0 then
    redis.call('INCRBY', KEYS[i], d)
    if ttl > 0 and redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
return 1
"""

# KEYS: one counter. ARGV: value, ttl. Raises the counter to at least `value`, never lowers it:
# replicas may seed concurrently, and requests admitted meanwhile are already counted.
SEED = """
local v, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if v > tonumber(redis.call('GET', KEYS[1]) or '0') then
  if ttl > 0 then redis.call('SET', KEYS[1], v, 'EX', ttl) else redis.call('SET', KEYS[1], v) end
end
return 1
"""


class RedisLimiter(Limiter):
    def __init__(
        self, url: str, rules: Rules, *, prefix: str, fail_open: bool = False, clock: Callable[[], float] = time.time,
        timeout_s: float = 2.0, max_connections: int = 32,
    ) -> None:
        super().__init__(rules, clock=clock)
        # Short timeouts: a stalled Redis must turn into a fast 503 (or a fail-open), not a hang.
        # A bounded pool that requests wait on: a burst of concurrent requests reuses a few
        # connections instead of opening one each, which on a busy event loop ran into the connect
        # timeout although Redis was fine (seen in CI: 50 concurrent admits, one 503).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout_s,
            socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._prefix = prefix.rstrip(":") + ":"
        self._fail_open = fail_open
        self._warned_at = -math.inf
        self._acquire = self._redis.register_script(ACQUIRE)
        self._adjust_script = self._redis.register_script(ADJUST)
        self._seed_script = self._redis.register_script(SEED)
        self._marker = self._prefix + "seeded"
        self._restoring = asyncio.Lock()

    def key(self, name: str) -> str:
        return self._prefix + name

    async def _take(self, plan: Plan) -> Outcome:
        keys: list[str] = []
        args: list[int] = [len(plan.subjects), plan.tokens, plan.cost_nano]
        for sp in plan.subjects:
            keys += [self.key(sp.requests.name), self.key(sp.tokens.name), self.key(sp.budget.name)]
            args += [sp.requests.limit, sp.tokens.limit, sp.budget.limit, sp.requests.ttl_s, sp.budget.ttl_s]
        keys.append(self._marker)
        try:
            reply = await self._acquire(keys=keys, args=args)
            if int(reply[0]) == -1:
                await self._restore()
                reply = await self._acquire(keys=keys, args=args)
        except RedisError as exc:
            return self._unavailable(plan, exc)
        values = [int(v) for v in reply]
        if values[0] == 0:
            return Outcome(False, ((values[3], values[4], values[5]),), values[1], KINDS[values[2]])  # type: ignore[arg-type]
        counts = tuple((values[i], values[i + 1], values[i + 2]) for i in range(3, len(values), 3))
        return Outcome(True, counts)

    async def _restore(self) -> None:
        """Seed budgets after Redis lost its data (or on first use), once per replica at a time."""
        async with self._restoring:
            if await self._redis.exists(self._marker):
                return
            log.warning("limits: Redis has no budget counters (first use, or it restarted empty); seeding them")
            try:
                await self.reseed()
            except RedisError:
                raise
            except Exception as exc:  # the usage table is unreachable: as unavailable as Redis itself
                raise RedisError(f"seeding budget counters failed: {exc}") from exc
            await self._redis.set(self._marker, 1)

    def _unavailable(self, plan: Plan, exc: RedisError) -> Outcome:
        """Redis is down: admit without limits (fail-open) or refuse with 503 (the default).
        Each call retries Redis, so the limiter recovers as soon as it answers again."""
        now = time.monotonic()
        if now - self._warned_at >= 10.0:  # one line per outage-ish, not one per request
            self._warned_at = now
            mode = "admitting without limits (fail-open)" if self._fail_open else "refusing limited requests"
            log.warning("limits: Redis unavailable, %s: %s", mode, exc)
        if self._fail_open:
            return Outcome(True, tuple((0, 0, 0) for _ in plan.subjects))
        raise errors.ServiceUnavailable(
            "Rate limiting is unavailable, so requests under a rate limit or budget are refused; try again shortly.",
            code="rate_limiter_unavailable", headers={"retry-after": "1"},
        )

    async def _adjust(self, changes: Sequence[Change]) -> None:
        args: list[int] = []
        for _, delta, ttl in changes:
            args += [delta, ttl]
        await self._adjust_script(keys=[self.key(name) for name, _, _ in changes], args=args)

    async def _seed(self, counter: Counter, value: int) -> None:
        await self._seed_script(keys=[self.key(counter.name)], args=[value, counter.ttl_s])

    async def value(self, name: str) -> int:
        """A counter's current value (for tests and diagnostics)."""
        found = await self._redis.get(self.key(name))
        return int(found or 0)

    async def ready(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()
