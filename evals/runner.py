"""The runner: a suite in, a `SuiteResult` out. It never raises for a broken suite or a dead target:
those come back as a result with `error` set (status "error", exit code 2).

    load dataset → bind metrics (unknown metric / setting: error) → build every request (template
    errors: error) → baseline file (missing: error) → preflight (nothing answers: error)
    → per target: calls (cache, concurrency, retries; fatal failure: error) → scores → statistics
    → checks (thresholds, error rate) → comparisons between targets → regressions against the baseline
"""

from __future__ import annotations

import asyncio
import datetime
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evals.cache import OutputCache
from evals.compare import compare_targets, load_baseline, regression_checks
from evals.dataset import Sample, load_dataset
from evals.errors import EvalError, SuiteError, TargetError
from evals.metrics import BoundMetric, Metric, MetricContext, MetricRegistry, Score, default_registry, load_plugins
from evals.metrics.semantic import LocalEmbedder
from evals.outputs import Output
from evals.results import Check, ItemResult, MetricResult, SuiteResult, TargetResult
from evals.suite import MetricSpec, Suite, TargetSpec
from evals.targets import CallError, Request, Transport, build_request, target_version


@dataclass
class RunOverrides:
    """Command-line settings that win over the suite's `run:` section."""

    concurrency: int | None = None
    retries: int | None = None
    seed: int | None = None
    limit: int | None = None
    baseline: Path | None = None
    use_cache: bool = True


@dataclass
class _Bound:
    spec: MetricSpec
    metric: Metric
    bound: BoundMetric
    item_threshold: float | None
    thresholds: list[tuple[str, str, float]] = field(default_factory=list)  # (stat, "min"/"max", limit)


def _thresholds(spec: MetricSpec, metric: Metric, stats: set[str]) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    label = spec.display_name
    raw = spec.threshold
    if raw is None:
        return []
    if isinstance(raw, int | float):
        direction = metric.direction(metric.primary) or ("min" if metric.higher_is_better else "max")
        return [(metric.primary, direction, float(raw))]
    for stat, value in raw.items():
        if stat not in stats:
            raise SuiteError(f"metric {label!r}: threshold on unknown statistic {stat!r}; it has {sorted(stats)}")
        if isinstance(value, dict):
            unknown = set(value) - {"min", "max"}
            if unknown or not value:
                raise SuiteError(f"metric {label!r}: threshold {stat}: use {{min: X}} and/or {{max: X}}")
            out.extend((stat, d, float(v)) for d, v in value.items())
        else:
            found = metric.direction(stat)
            if found is None:
                raise SuiteError(f"metric {label!r}: say whether {stat} is a floor or a ceiling: "
                                 f"{{{stat}: {{min: {value}}}}} or {{{stat}: {{max: {value}}}}}")
            out.append((stat, found, float(value)))
    return out


def bind_metrics(suite: Suite, registry: MetricRegistry) -> list[_Bound]:
    bound = []
    for spec in suite.metrics:
        metric = registry.get(spec.metric)
        b = metric.bind(spec.params, suite.base_dir, spec.display_name)
        stats = set(metric.aggregate([])) | {"pass_rate"}
        item_threshold = spec.item_threshold
        if item_threshold is None and metric.higher_is_better:
            item_threshold = 0.5
        bound.append(_Bound(spec, metric, b, item_threshold, _thresholds(spec, metric, stats)))
    return bound


def _preview(sample: Sample, request: Request) -> str:
    messages = request.body.get("messages") or []
    if messages and isinstance(messages[-1], dict):
        text = str(messages[-1].get("content", ""))
    else:
        text = str(request.body.get("query") or sample.get("input") or "")
    return text[:500]


class SuiteRun:
    """One suite against one gateway. Use `run_suite()`."""

    def __init__(self, suite: Suite, transport: Transport, *, cache: OutputCache | None, registry: MetricRegistry,
                 overrides: RunOverrides, progress: bool, embedder: LocalEmbedder | None) -> None:
        self.suite = suite
        self.transport = transport
        self.registry = registry
        self.o = overrides
        rs = suite.run
        self.concurrency = overrides.concurrency or rs.concurrency
        self.retries = rs.retries if overrides.retries is None else overrides.retries
        self.seed = rs.seed if overrides.seed is None else overrides.seed
        self.cache = cache if (cache is not None and rs.cache and overrides.use_cache) else None
        self.progress = progress
        self.embedder = embedder
        self.sem = asyncio.Semaphore(self.concurrency)

    # ---------------------------------------------------------------- calls
    async def call(self, request: Request) -> Output:
        last: CallError | None = None
        start = time.perf_counter()
        for attempt in range(self.retries + 1):
            try:
                return await self.transport.call(request)
            except CallError as err:
                last = err
                if not err.retryable or attempt == self.retries:
                    break
                await asyncio.sleep(self.suite.run.retry_backoff_s * 2**attempt)
        assert last is not None
        if last.fatal:
            raise TargetError(f"target unusable: {last}")
        return Output(error=f"{last} (after {self.retries + 1} attempt(s))",
                      latency_ms=(time.perf_counter() - start) * 1000)

    async def cached_call(self, request: Request, version: str, target: str) -> Output:
        key = request.key(version) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                out = Output.from_dict(hit)
                out.cached = True
                return out
        out = await self.call(request)
        if self.cache is not None and out.error is None:
            self.cache.put(key, target, out.to_dict())
        return out

    async def judge(self, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
        request = Request("/v1/chat/completions", {"model": model, "messages": messages, **params})
        async with self.sem:
            out = await self.cached_call(request, "judge", f"judge:{model}")
        if out.error:
            raise RuntimeError(f"judge call failed: {out.error}")
        return out.text or ""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if self.embedder is None:
            self.embedder = LocalEmbedder()
        return await self.embedder.embed(texts)

    # ---------------------------------------------------------------- scoring
    async def score(self, bound: list[_Bound], item: ItemResult, sample: Sample, ctx: MetricContext) -> None:
        for b in bound:
            name = b.spec.display_name
            if item.output.error:
                item.scores[name], item.passed[name] = Score(None, "call failed"), None
                continue
            try:
                score = await b.bound.score(sample, item.output, ctx)
            except SuiteError:
                raise
            except Exception as exc:  # one item's scoring failure is that item's, recorded
                score = Score(None, {"error": f"{type(exc).__name__}: {exc}"[:300]})
            item.scores[name] = score
            if score.value is None or b.item_threshold is None:
                item.passed[name] = None
            elif b.metric.higher_is_better:
                item.passed[name] = score.value >= b.item_threshold
            else:
                item.passed[name] = score.value <= b.item_threshold

    # ---------------------------------------------------------------- one target
    async def run_target(self, spec: TargetSpec, samples: list[Sample], requests: list[Request],
                         bound: list[_Bound], ctx: MetricContext) -> TargetResult:
        name = spec.display_name
        t0 = time.perf_counter()
        result = TargetResult(name, spec.model_dump(mode="json", exclude_none=True))
        items: list[ItemResult | None] = [None] * len(samples)
        bar = tqdm(total=len(samples), desc=f"{self.suite.name}/{name}", unit="item", file=sys.stderr,
                   disable=not self.progress, dynamic_ncols=True)
        resolved: str | None = str(spec.prompt.version) if spec.prompt and spec.prompt.version else None
        use_cache = self.cache is not None

        async def finish(i: int, out: Output) -> None:
            item = ItemResult(samples[i].id, samples[i].category, _preview(samples[i], requests[i]),
                              samples[i].get("expected", samples[i].get("expect", samples[i].get("relevant"))), out)
            await self.score(bound, item, samples[i], ctx)
            items[i] = item
            bar.update()

        start = 0
        if spec.prompt is not None and spec.prompt.label is not None:
            # A label can move: ask once (uncached) which version it points to, key the cache by that.
            async with self.sem:
                first = await self.call(requests[0])
            resolved = first.prompt_version
            if resolved is None:
                use_cache = False
                result.warnings.append("the gateway sent no x-prompt-version; outputs of this target are not cached")
            elif self.cache is not None and first.error is None:
                self.cache.put(requests[0].key(target_version(spec, resolved)), name, first.to_dict())
            await finish(0, first)
            start = 1
        version = target_version(spec, resolved)

        async def one(i: int) -> None:
            async with self.sem:
                out = await (self.cached_call(requests[i], version, name) if use_cache else self.call(requests[i]))
            await finish(i, out)

        tasks = [asyncio.create_task(one(i)) for i in range(start, len(samples))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            bar.close()
        result.items = [i for i in items if i is not None]
        if result.items and all(i.error for i in result.items):
            raise TargetError(f"target {name!r} unusable: every call failed; first: {result.items[0].error}")
        result.prompt_version = resolved
        result.cache_hits = sum(1 for i in result.items if i.output.cached)
        result.calls = len(result.items) - result.cache_hits
        seen = {i.output.prompt_version for i in result.items if i.output.prompt_version and not i.output.error}
        if len(seen) > 1:
            result.warnings.append(f"the prompt label moved during the run: versions {sorted(seen)} answered")
        self.aggregate(result, bound, spec.gate)
        result.duration_s = time.perf_counter() - t0
        return result

    def aggregate(self, result: TargetResult, bound: list[_Bound], gating: bool) -> None:
        ok_items = [i for i in result.items if not i.error]
        for b in bound:
            name = b.spec.display_name
            scores = [i.scores[name] for i in ok_items]
            stats = dict(b.metric.aggregate(scores))
            marks = [bool(i.passed[name]) for i in ok_items if i.passed.get(name) is not None]
            stats["pass_rate"] = sum(marks) / len(marks) if marks else None
            result.metrics[name] = MetricResult(name, b.metric.name, b.metric.primary, b.metric.higher_is_better,
                                                b.item_threshold, stats)
            for stat, direction, limit in b.thresholds:
                actual = stats.get(stat)
                op = "≥" if direction == "min" else "≤"
                check = f"{name}.{stat} {op} {limit:g}"
                failing = [i.id for i in ok_items if i.passed.get(name) is False]
                if actual is None:
                    result.checks.append(Check("threshold", result.name, check, False,
                                               f"{check}: no item was scored", name, stat, op, limit, None,
                                               failing, gating))
                    continue
                passed = actual >= limit if direction == "min" else actual <= limit
                msg = f"{name}.{stat} = {actual:.4g} ({'meets' if passed else 'misses'} {op} {limit:g})"
                result.checks.append(Check("threshold", result.name, check, passed, msg, name, stat, op, limit,
                                           actual, failing, gating))
        n = len(result.items)
        errors = result.errors
        allowed = self.suite.run.max_error_rate
        rate = errors / n if n else 1.0
        failed = [i.id for i in result.items if i.error]
        first = next((i.error for i in result.items if i.error), "")
        result.checks.append(Check(
            "errors", result.name, f"errors ≤ {allowed:.0%}", rate <= allowed,
            f"{errors}/{n} item(s) failed to call the target" + (f"; first: {first}" if first else ""),
            None, "error_rate", "≤", allowed, rate, failed, gating))

    # ---------------------------------------------------------------- the suite
    async def run(self) -> SuiteResult:
        suite = self.suite
        result = SuiteResult(suite.name, suite.description, str(suite.source) if suite.source else None,
                             suite.dataset.path, self.seed,
                             datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
        t0 = time.perf_counter()
        try:
            load_plugins(self.registry, suite.plugins)
            samples = load_dataset(suite.resolve(suite.dataset.path), suite.dataset.format,
                                   limit=suite.dataset.limit, sample=suite.dataset.sample, seed=self.seed)
            if self.o.limit:
                samples = samples[: self.o.limit]
            bound = bind_metrics(suite, self.registry)
            targets = suite.all_targets
            requests = {t.display_name: [build_request(t, s, self.seed) for s in samples] for t in targets}
            baseline_path = self.o.baseline or (suite.resolve(suite.baseline.path) if suite.baseline else None)
            baseline = load_baseline(baseline_path, suite.name) if baseline_path else None
            await self.transport.preflight()
            ctx = MetricContext(suite.base_dir, self.seed, judge=self.judge, embed=self.embed)
            for spec in targets:
                result.targets.append(await self.run_target(spec, samples, requests[spec.display_name], bound, ctx))
            metrics = {b.spec.display_name: b.metric for b in bound}
            result.comparisons = compare_targets(result.targets, metrics, self.seed)
            if baseline is not None and baseline_path is not None:
                tol = suite.baseline.tolerance if suite.baseline else 0.0
                sig = suite.baseline.require_significance if suite.baseline else False
                checks, diffs = regression_checks(
                    baseline, result.targets, metrics, {b.spec.display_name: b.spec.tolerance for b in bound},
                    tol, sig, self.seed, {t.display_name: t.gate for t in targets})
                result.regression_checks = checks
                result.baseline = {"path": str(baseline_path), "started_at": baseline.get("started_at"),
                                   "diffs": diffs}
        except EvalError as err:
            result.error, result.error_type = str(err), type(err).__name__
        result.duration_s = time.perf_counter() - t0
        return result


async def run_suite(suite: Suite, transport: Transport, *, cache: OutputCache | None = None,
                    registry: MetricRegistry | None = None, overrides: RunOverrides | None = None,
                    progress: bool = False, embedder: LocalEmbedder | None = None) -> SuiteResult:
    """Run one suite against the gateway behind `transport`. Errors come back inside the result."""
    runner = SuiteRun(suite, transport, cache=cache, registry=registry or default_registry(),
                      overrides=overrides or RunOverrides(), progress=progress, embedder=embedder)
    return await runner.run()


def broken(path: str, err: EvalError) -> SuiteResult:
    """The result for a suite file that could not even be loaded."""
    name = Path(path).stem
    return SuiteResult(name, source=path, error=str(err), error_type=type(err).__name__,
                       started_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
