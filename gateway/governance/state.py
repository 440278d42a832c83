"""`Governance`: everything this package runs, built once by the app factory, reached as
`request.app.state.governance`. The request path needs five calls, in this order:

    principal = await gov.authenticate(secret)            # virtual keys (None: not one of ours)
    reservation = await gov.admit(principal, model=..., prompt_tokens=..., max_tokens=...)
    ...model call...                                      # 429 LimitRejected raised above
    cost = await gov.settle(reservation, input_tokens=..., output_tokens=...)   # always, once
    gov.log(RequestRecord(..., cost=cost))                # never blocks
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy.engine import Engine

from gateway.auth import Principal
from gateway.governance.audit import AuditLog
from gateway.governance.keys import VirtualKeys, to_principal
from gateway.governance.keystore import KeyRepository
from gateway.governance.limiter import Limiter, LimitRejected, Reservation, Rules, Subject
from gateway.governance.local_limiter import LocalLimiter
from gateway.governance.logstore import RequestLogStore
from gateway.governance.masking import Mask, pii_mask
from gateway.governance.metrics import Metrics
from gateway.governance.migrations import migrate
from gateway.governance.pricing import PriceTable
from gateway.governance.principal import team_of
from gateway.governance.records import RequestRecord, UsageEvent
from gateway.governance.requestlog import RequestLog
from gateway.governance.settings import GovernanceSettings
from gateway.governance.tracing import Tracing
from gateway.governance.windows import day_key, period_start
from prompts.db import create_engine
from prompts.rows import now

log = logging.getLogger(__name__)


@dataclass
class Governance:
    settings: GovernanceSettings
    engine: Engine
    keys: VirtualKeys
    limiter: Limiter
    requests: RequestLog
    audit: AuditLog
    metrics: Metrics
    tracing: Tracing
    prices: PriceTable

    @classmethod
    def build(
        cls,
        settings: GovernanceSettings,
        *,
        data_dir: Path,
        mask: Mask = pii_mask,
        span_exporter: SpanExporter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Governance:
        """Open the database (migrating it), start the log writer; `await start()` before serving."""
        # A short busy timeout: the log writer retries on its own, and shutdown must not hang.
        engine = create_engine(settings.resolved_database_url(data_dir), busy_timeout_ms=5000)
        migrate(engine)
        tracing = Tracing(settings.tracing, mask=mask, exporter=span_exporter)  # fails early on a bad exporter
        metrics = Metrics()
        prices = PriceTable(settings.prices)
        rules = Rules(prices=prices, teams=settings.teams, default_max_tokens=settings.default_max_tokens)
        limiter: Limiter = LocalLimiter(rules, clock=clock)
        keys = VirtualKeys(KeyRepository(engine), ttl_s=settings.key_cache_ttl_s, wall=clock)
        if settings.redis_url:
            # Imported only here: the redis client costs about half a second at import.
            from gateway.governance.redis_limiter import RedisLimiter
            from prompts.redis_channel import RedisInvalidation

            limiter = RedisLimiter(settings.redis_url, rules, prefix=settings.redis_prefix,
                                   fail_open=settings.limits_fail_open, clock=clock,
                                   timeout_s=settings.redis_timeout_s, max_connections=settings.redis_max_connections)
            keys.attach(RedisInvalidation(settings.redis_url, settings.keys_channel, keys.invalidate, listen=True))
        requests = RequestLog(
            RequestLogStore(engine), settings, masker=mask, spill_dir=data_dir,
            on_written=metrics.log_written.inc, on_dropped=metrics.log_dropped.inc,
        )
        metrics.watch_log_queue(requests.qsize)
        return cls(settings, engine, keys, limiter, requests, AuditLog(engine), metrics, tracing, prices)

    async def start(self) -> None:
        """Carry budgets over a restart: seed this period's counters from the usage table.

        With Redis the limiter also seeds whenever it finds Redis emptied (restarted without
        persistence), so a Redis that is down now only delays seeding to its return."""
        self.limiter.on_reseed(self._seed_budgets)
        try:
            await self._seed_budgets()
        except Exception as exc:
            if not self.settings.redis_url:
                raise
            log.warning("budgets not seeded at start-up (%s); they will be once Redis answers", exc)

    async def _seed_budgets(self) -> None:
        # Spend this replica acknowledged may still be queued for the usage table: write it first.
        await asyncio.to_thread(self.requests.flush, 10.0)
        for subject, spent in await asyncio.to_thread(self._spent_this_period):
            await self.limiter.seed(subject, spent)

    def _spent_this_period(self) -> list[tuple[Subject, int]]:
        subjects = [self.limiter.subjects(to_principal(k))[0] for k in self.keys.repo.with_budgets()]
        subjects += [s for t in self.settings.teams if (s := self.limiter.team_subject(t)) and s.limits.budget]
        seeds = []
        for subject in subjects:
            assert subject.limits.budget is not None
            start = period_start(subject.limits.budget.period, time.time())
            _, nano = self.requests.store.spent(subject.id, day_key(start.timestamp()) if start else None)
            seeds.append((subject, nano))
        return seeds

    async def aclose(self) -> None:
        """Flush the request log (every accepted record is stored or spilled), then let go."""
        await asyncio.to_thread(self.requests.close)
        await self.limiter.aclose()
        self.keys.close()
        self.tracing.shutdown()
        self.engine.dispose()

    # -- the request path ---------------------------------------------------------------

    async def authenticate(self, secret: str) -> Principal | None:
        return await self.keys.alookup(secret)

    async def admit(
        self, principal: Principal, *, model: str, prompt_tokens: int, max_tokens: int | None
    ) -> Reservation:
        """Reserve the estimate against every limit of the principal and its team, or raise 429."""
        try:
            return await self.limiter.acquire(principal, model=model, prompt_tokens=prompt_tokens, max_tokens=max_tokens)
        except LimitRejected as exc:
            self.metrics.rejected(exc.scope, exc.kind)
            raise

    async def settle(self, reservation: Reservation, *, input_tokens: int, output_tokens: int) -> float:
        """Charge the actual usage (0/0 when the call failed before any token); returns USD."""
        cost = await self.limiter.settle(reservation, input_tokens=input_tokens, output_tokens=output_tokens)
        self.metrics.usage(reservation.model, input_tokens=input_tokens, output_tokens=output_tokens, cost=cost)
        return cost

    async def record_usage(self, principal: Principal, *, tokens: int, cost: float) -> None:
        """Tokens spent by rails or retrieval on this principal's behalf: limits and spend."""
        await self.limiter.record_usage(principal, tokens=tokens, cost=cost)
        self.requests.record_usage(
            UsageEvent(at=now(), key_id=principal.key_id, team=team_of(principal), tokens=tokens, cost=cost)
        )

    def log(self, record: RequestRecord) -> bool:
        return self.requests.enqueue(record)


def governance(request: Request) -> Governance:
    return request.app.state.governance  # type: ignore[no-any-return]
