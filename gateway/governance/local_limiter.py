"""Counters in this process: the embedded default, exact for a single replica."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence

from gateway.governance.limiter import Change, Counter, Limiter, Outcome, Plan, Rules, decide, increments

_SWEEP_EVERY = 4096


class LocalLimiter(Limiter):
    def __init__(self, rules: Rules, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(rules, clock=clock)
        # name -> (value, expiry as epoch seconds). A lock rather than relying on the event loop:
        # the same limiter may be driven from worker threads (admin tools, benchmarks).
        self._counters: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._ops = 0

    def _read(self, name: str, now: float) -> int:
        found = self._counters.get(name)
        return found[0] if found is not None and found[1] > now else 0

    def _add(self, name: str, delta: int, ttl_s: int, now: float) -> None:
        found = self._counters.get(name)
        if found is not None and found[1] > now:
            self._counters[name] = (found[0] + delta, found[1])
        else:
            self._counters[name] = (delta, now + ttl_s if ttl_s > 0 else math.inf)

    def _sweep(self, now: float) -> None:
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            for name in [n for n, (_, exp) in self._counters.items() if exp <= now]:
                del self._counters[name]

    async def _take(self, plan: Plan) -> Outcome:
        with self._lock:
            outcome = decide(plan, lambda name: self._read(name, plan.now))
            if outcome.admitted:
                for name, delta, ttl in increments(plan):
                    self._add(name, delta, ttl, plan.now)
            self._sweep(plan.now)
        return outcome

    async def _adjust(self, changes: Sequence[Change]) -> None:
        now = self._clock()
        with self._lock:
            for name, delta, ttl in changes:
                self._add(name, delta, ttl, now)

    async def _seed(self, counter: Counter, value: int) -> None:
        now = self._clock()
        with self._lock:
            current = self._read(counter.name, now)
            if value > current:  # raise, never lower (as the Redis store does)
                self._add(counter.name, value - current, counter.ttl_s, now)

    async def value(self, name: str) -> int:
        """A counter's current value (for tests and diagnostics)."""
        with self._lock:
            return self._read(name, self._clock())
