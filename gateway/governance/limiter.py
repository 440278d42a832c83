"""Rate limits and budgets: one rule, two counter stores (in process, or Redis for several replicas).

The rule, for every subject (the key, and its team when the team has limits):
* requests: fixed UTC-minute windows; a request is admitted while the window count < rpm.
* tokens: the same windows; admitted while used + estimate <= tpm.
* budget: nano-USD per calendar period; admitted while spent + estimated cost <= amount.
Checks and increments for all subjects happen in one atomic step (a lock, or one Lua script),
so concurrent requests can never both take the last slot. The estimate (prompt tokens plus
max_tokens, priced) is charged up front and corrected to the actual when the request settles:
with upper-bound estimates no subject ever goes over; an under-estimate (no max_tokens, or rails
and retrieval spending later) can overshoot by at most what the in-flight requests under-estimated.
A request whose replica dies before settling stays charged at its estimate (never under-charged).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from gateway import errors
from gateway.auth import Principal
from gateway.governance.pricing import PriceTable, to_nano, to_usd
from gateway.governance.principal import limits_of, team_of
from gateway.governance.quota import Limits
from gateway.governance.settings import TeamLimits
from gateway.governance.windows import minute_window, period_end, period_key

log = logging.getLogger(__name__)

Kind = Literal["requests", "tokens", "budget"]
WINDOW_TTL_S = 120  # two windows: a settle in the same window must still find its counter
BUDGET_GRACE_S = 86_400


@dataclass(frozen=True, slots=True)
class Subject:
    id: str  # counter namespace: "key:<id>" or "team:<name>"
    label: str  # for messages: "key 'ci' (vk-...)", "team 'search'"
    scope: Literal["key", "team"]
    limits: Limits


@dataclass(frozen=True, slots=True)
class Counter:
    name: str
    limit: int  # -1: uncapped, so neither checked nor counted
    ttl_s: int  # -1: never expires


@dataclass(frozen=True, slots=True)
class SubjectPlan:
    subject: Subject
    requests: Counter
    tokens: Counter
    budget: Counter
    period: str
    budget_ends_at: float | None  # epoch seconds; None: a total budget never resets


@dataclass(frozen=True, slots=True)
class Plan:
    now: float
    window: int
    reset_s: float
    tokens: int
    cost_nano: int
    subjects: tuple[SubjectPlan, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    admitted: bool
    # Admitted: (requests, tokens, spent) per subject after taking. Rejected: the rejecting
    # subject's index and its counters as read.
    counts: tuple[tuple[int, int, int], ...]
    index: int = -1
    kind: Kind | None = None


Change = tuple[str, int, int]  # (counter, delta, ttl_s)


@dataclass(slots=True)
class Reservation:
    """What `acquire` took; hand it to `settle` exactly once when the request ends."""

    model: str
    tokens: int
    cost_nano: int
    plan: Plan | None
    headers: dict[str, str] = field(default_factory=dict)
    settled: bool = False


class LimitRejected(errors.RateLimited):
    """429 with OpenAI's rate-limit headers; `scope` and `kind` feed the rejection metric."""

    def __init__(self, message: str, *, scope: str, kind: Kind, headers: dict[str, str]) -> None:
        super().__init__(message, code="budget_exceeded" if kind == "budget" else None, headers=headers)
        self.scope = scope
        self.kind = kind


def decide(plan: Plan, read: Callable[[str], int]) -> Outcome:
    """The rule in Python; `redis_limiter.ACQUIRE` is the same rule in Lua."""
    counts = []
    for i, sp in enumerate(plan.subjects):
        r = read(sp.requests.name) if sp.requests.limit >= 0 else 0
        t = read(sp.tokens.name) if sp.tokens.limit >= 0 else 0
        b = read(sp.budget.name) if sp.budget.limit >= 0 else 0
        if sp.requests.limit >= 0 and r + 1 > sp.requests.limit:
            return Outcome(False, ((r, t, b),), i, "requests")
        if sp.tokens.limit >= 0 and t + plan.tokens > sp.tokens.limit:
            return Outcome(False, ((r, t, b),), i, "tokens")
        if sp.budget.limit >= 0 and b + plan.cost_nano > sp.budget.limit:
            return Outcome(False, ((r, t, b),), i, "budget")
        counts.append((r, t, b))
    taken = tuple(
        (r + (sp.requests.limit >= 0), t + plan.tokens * (sp.tokens.limit >= 0), b + plan.cost_nano * (sp.budget.limit >= 0))
        for (r, t, b), sp in zip(counts, plan.subjects, strict=True)
    )
    return Outcome(True, taken)


def increments(plan: Plan) -> list[Change]:
    changes: list[Change] = []
    for sp in plan.subjects:
        for counter, delta in ((sp.requests, 1), (sp.tokens, plan.tokens), (sp.budget, plan.cost_nano)):
            if counter.limit >= 0 and delta:
                changes.append((counter.name, delta, counter.ttl_s))
    return changes


def duration(seconds: float) -> str:
    """OpenAI's reset format: "850ms", "12s", "1m3s"."""
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def rate_headers(plan: Plan, counts: Sequence[tuple[int, int, int]], subjects: Sequence[SubjectPlan]) -> dict[str, str]:
    """x-ratelimit-* of the tightest subject for requests and for tokens."""
    headers: dict[str, str] = {}
    for pos, kind in ((0, "requests"), (1, "tokens")):
        tightest: tuple[int, int] | None = None
        for sp, c in zip(subjects, counts, strict=True):
            limit = (sp.requests if pos == 0 else sp.tokens).limit
            if limit >= 0 and (tightest is None or limit - c[pos] < tightest[1]):
                tightest = (limit, max(0, limit - c[pos]))
        if tightest is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(tightest[0])
            headers[f"x-ratelimit-remaining-{kind}"] = str(tightest[1])
            headers[f"x-ratelimit-reset-{kind}"] = duration(plan.reset_s)
    return headers


def _rejection(plan: Plan, outcome: Outcome) -> LimitRejected:
    sp = plan.subjects[outcome.index]
    r, t, b = outcome.counts[0]
    headers = rate_headers(plan, [(r, t, b)], [sp])
    label, retry = sp.subject.label, plan.reset_s
    if outcome.kind == "requests":
        message = f"Rate limit reached for {label}: {sp.requests.limit} requests per minute."
    elif outcome.kind == "tokens" and plan.tokens > sp.tokens.limit:
        message = (f"This request needs about {plan.tokens} tokens (prompt + max_tokens), more than the "
                   f"{sp.tokens.limit} tokens per minute allowed for {label}; lower max_tokens.")
    elif outcome.kind == "tokens":
        message = (f"Rate limit reached for {label}: {sp.tokens.limit} tokens per minute "
                   f"({t} used, this request needs about {plan.tokens}).")
    else:
        budget = sp.subject.limits.budget
        assert budget is not None
        message = (f"Budget exceeded for {label}: ${to_usd(b):.4f} of ${budget.amount:.2f} spent "
                   f"{'in total' if budget.period == 'total' else 'this ' + budget.period}; "
                   f"this request could cost up to ${to_usd(plan.cost_nano):.4f}.")
        if sp.budget_ends_at is None:
            return LimitRejected(message + " Ask an admin to raise the budget.", scope=sp.subject.scope,
                                 kind="budget", headers=headers)
        retry = sp.budget_ends_at - plan.now
        reset_at = datetime.fromtimestamp(sp.budget_ends_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message += f" The budget resets at {reset_at}."
    headers["retry-after"] = str(max(1, math.ceil(retry)))
    if outcome.kind != "budget":
        message += f" Retry after {headers['retry-after']}s."
    return LimitRejected(message, scope=sp.subject.scope, kind=outcome.kind or "requests", headers=headers)


@dataclass(frozen=True)
class Rules:
    """What both counter stores need to know: prices, team limits, the max_tokens fallback."""

    prices: PriceTable
    teams: Mapping[str, TeamLimits]
    default_max_tokens: int


class Limiter(ABC):
    """Admission for the request path. Subclasses only store counters."""

    def __init__(self, rules: Rules, *, clock: Callable[[], float] = time.time) -> None:
        self.prices = rules.prices
        self._teams = {name: Limits(t.rpm, t.tpm, t.budget) for name, t in rules.teams.items()}
        self._default_max_tokens = rules.default_max_tokens
        self._clock = clock
        self._subjects: dict[tuple[str, str, str | None, Limits], tuple[Subject, ...]] = {}
        self._plans: dict[Subject, SubjectPlan] = {}
        self._plans_window = -1
        self._seeder: Callable[[], Awaitable[None]] | None = None

    def subjects(self, principal: Principal) -> tuple[Subject, ...]:
        own, team = limits_of(principal), team_of(principal)
        cache_key = (principal.key_id, principal.name, team, own)
        found = self._subjects.get(cache_key)
        if found is None:
            found = self._build_subjects(principal.key_id, principal.name, team, own)
            if len(self._subjects) > 100_000:
                self._subjects.clear()
            self._subjects[cache_key] = found
        return found

    def _build_subjects(self, key_id: str, name: str, team: str | None, own: Limits) -> tuple[Subject, ...]:
        found = []
        if not own.empty:
            found.append(Subject(f"key:{key_id}", f"key '{name}' ({key_id})", "key", own))
        if team is not None and (subject := self.team_subject(team)) is not None:
            found.append(subject)
        return tuple(found)

    def team_subject(self, team: str) -> Subject | None:
        limits = self._teams.get(team)
        return Subject(f"team:{team}", f"team '{team}'", "team", limits) if limits and not limits.empty else None

    def plan(self, subjects: Sequence[Subject], *, tokens: int, cost_nano: int, now: float | None = None) -> Plan:
        now = self._clock() if now is None else now
        window, reset_s = minute_window(now)
        if window != self._plans_window:
            # Counter names change only with the minute (and the period), so plans are reused within one.
            self._plans.clear()
            self._plans_window = window
        plans = []
        for s in subjects:
            sp = self._plans.get(s)
            if sp is None:
                sp = self._plans[s] = self._subject_plan(s, window, now)
            plans.append(sp)
        return Plan(now, window, reset_s, tokens, cost_nano, tuple(plans))

    @staticmethod
    def _subject_plan(s: Subject, window: int, now: float) -> SubjectPlan:
        budget = s.limits.budget
        period = period_key(budget.period, now) if budget else "-"
        end = period_end(budget.period, now) if budget else None
        budget_ttl = -1 if end is None else math.ceil(end.timestamp() - now) + BUDGET_GRACE_S
        return SubjectPlan(
            s,
            Counter(f"{s.id}:r:{window}", -1 if s.limits.rpm is None else s.limits.rpm, WINDOW_TTL_S),
            Counter(f"{s.id}:t:{window}", -1 if s.limits.tpm is None else s.limits.tpm, WINDOW_TTL_S),
            Counter(f"{s.id}:b:{period}", -1 if budget is None else to_nano(budget.amount), budget_ttl),
            period,
            end.timestamp() if end else None,
        )

    async def acquire(
        self, principal: Principal, *, model: str, prompt_tokens: int, max_tokens: int | None
    ) -> Reservation:
        """Admit the request or raise `LimitRejected` (429). Embeddings pass max_tokens=0."""
        completion = self._default_max_tokens if max_tokens is None else max_tokens
        tokens = prompt_tokens + completion
        cost = self.prices.cost_nano(model, prompt_tokens, completion)
        subjects = self.subjects(principal)
        if not subjects:
            return Reservation(model, tokens, cost, None)
        plan = self.plan(subjects, tokens=tokens, cost_nano=cost)
        outcome = await self._take(plan)
        if not outcome.admitted:
            raise _rejection(plan, outcome)
        return Reservation(model, tokens, cost, plan, rate_headers(plan, outcome.counts, plan.subjects))

    async def settle(self, reservation: Reservation, *, input_tokens: int, output_tokens: int) -> float:
        """Replace the estimate by the actual usage; returns the request's cost in USD."""
        cost = self.prices.cost_nano(reservation.model, input_tokens, output_tokens)
        if reservation.plan is None or reservation.settled:
            return to_usd(cost)
        reservation.settled = True
        d_tokens = input_tokens + output_tokens - reservation.tokens
        changes = self._corrections(reservation.plan, d_tokens, cost - reservation.cost_nano)
        if changes:
            # Shielded: settling often runs in the `finally` of a stream whose client went away,
            # and a cancelled correction would leave the estimate charged instead of the actual.
            await asyncio.shield(self._adjust_quietly(changes))
        return to_usd(cost)

    async def record_usage(self, principal: Principal, *, tokens: int, cost: float) -> None:
        """Charge tokens and cost spent outside the model call (rails, retrieval); never rejects."""
        subjects = self.subjects(principal)
        if subjects:
            plan = self.plan(subjects, tokens=0, cost_nano=0)
            await self._adjust_quietly(self._corrections(plan, tokens, to_nano(cost), fresh=True))

    def on_reseed(self, seeder: Callable[[], Awaitable[None]]) -> None:
        """Register what seeds every budget (`seed` per subject); a shared store that lost its
        counters calls it before admitting again."""
        self._seeder = seeder

    async def reseed(self) -> None:
        if self._seeder is not None:
            await self._seeder()

    async def seed(self, subject: Subject, spent_nano: int) -> None:
        """Raise the current period's budget counter to `spent_nano` (never lowers it)."""
        sp = self.plan([subject], tokens=0, cost_nano=0).subjects[0]
        if sp.budget.limit >= 0 and spent_nano > 0:
            await self._seed(sp.budget, spent_nano)

    def _corrections(self, plan: Plan, d_tokens: int, d_cost: int, *, fresh: bool = False) -> list[Change]:
        # A correction lands in the window/period it was reserved in; once that has rolled over,
        # only an overshoot is carried into the new one (a refund to a closed window is moot).
        now_plan = plan if fresh else self.plan([sp.subject for sp in plan.subjects], tokens=0, cost_nano=0)
        changes: list[Change] = []
        for old, new in zip(plan.subjects, now_plan.subjects, strict=True):
            same_window = fresh or now_plan.window == plan.window
            same_period = fresh or new.period == old.period
            for counter, current, delta, same in (
                (old.tokens, new.tokens, d_tokens, same_window),
                (old.budget, new.budget, d_cost, same_period),
            ):
                if counter.limit < 0:
                    continue
                target, amount = (counter, delta) if same else (current, max(0, delta))
                if amount:
                    changes.append((target.name, amount, target.ttl_s))
        return changes

    async def _adjust_quietly(self, changes: list[Change]) -> None:
        if not changes:
            return
        try:
            await self._adjust(changes)
        except Exception:
            # The response has gone out; a lost correction leaves the estimate charged, which errs safe.
            log.warning("limits: could not apply a usage correction", exc_info=True)

    @abstractmethod
    async def _take(self, plan: Plan) -> Outcome: ...

    @abstractmethod
    async def _adjust(self, changes: Sequence[Change]) -> None: ...

    @abstractmethod
    async def _seed(self, counter: Counter, value: int) -> None: ...

    async def ready(self) -> bool:
        """Whether the counter store answers (for `/ready`); the in-process one always does."""
        return True

    async def aclose(self) -> None:
        return None
