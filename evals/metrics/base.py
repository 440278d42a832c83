"""The metric registry. A metric is a small function registered by name; built-ins register the same way.

    def shouts(sample, output, *, min_ratio=0.5):        # per-item score: float, bool, None or Score
        text = output.text or ""
        return sum(c.isupper() for c in text) >= min_ratio * max(1, len(text))

    registry = default_registry()
    registry.register("shouts", shouts, description="mostly upper case")

Keyword-only parameters are the metric's settings (the suite's metric entry passes them); a
parameter named `ctx` receives the `MetricContext` (judge calls, embeddings, the suite folder).
A function may be `async`. `aggregate` turns the per-item scores into named statistics
(default: mean/min/max); `directions` says for each statistic whether a threshold is a floor
("min") or a ceiling ("max"); `primary` is the statistic a bare-number threshold checks.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from evals.errors import SuiteError, UnknownMetric

Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Score:
    """One item's score. `value` None means "not scored" (missing reference, unparseable judge reply)."""

    value: float | None
    detail: Any = None


Aggregate = Callable[[list[Score]], dict[str, float | None]]
Prepare = Callable[[dict[str, Any], Path], dict[str, Any]]


@dataclass
class MetricContext:
    """What a metric may need beyond the item and the output; filled in by the runner."""

    suite_dir: Path
    seed: int = 0
    judge: Callable[[str, list[dict[str, str]], dict[str, Any]], Awaitable[str]] | None = None
    embed: Callable[[list[str]], Awaitable[list[list[float]]]] | None = None


def mean_aggregate(scores: list[Score]) -> dict[str, float | None]:
    values = [s.value for s in scores if s.value is not None]
    return {
        "mean": statistics.fmean(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "n": float(len(scores)),
        "scored": float(len(values)),
    }


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), without numpy."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[..., Any]
    aggregate: Aggregate = mean_aggregate
    primary: str = "mean"
    higher_is_better: bool = True
    directions: Mapping[str, Direction] = field(default_factory=dict)
    regression: bool = True
    description: str = ""
    prepare: Prepare | None = None

    def direction(self, stat: str) -> Direction | None:
        if stat in self.directions:
            return self.directions[stat]
        if stat in ("mean", "min", "max", "pass_rate", "p50", "p90", "p95", "p99"):
            return "min" if self.higher_is_better else "max"
        return None

    @property
    def stats(self) -> list[str]:
        base = ["mean", "min", "max", "pass_rate"]
        return sorted({*base, *self.directions, self.primary})

    def signature(self) -> tuple[set[str], set[str], bool]:
        """(accepted settings, required settings, wants ctx)."""
        accepted, required, wants_ctx = set(), set(), False
        for p in list(inspect.signature(self.fn).parameters.values())[2:]:
            if p.name == "ctx":
                wants_ctx = True
                continue
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            accepted.add(p.name)
            if p.default is inspect.Parameter.empty:
                required.add(p.name)
        return accepted, required, wants_ctx

    def bind(self, params: Mapping[str, Any], suite_dir: Path, display: str | None = None) -> BoundMetric:
        accepted, required, wants_ctx = self.signature()
        label = display or self.name
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise SuiteError(
                f"metric {label!r} ({self.name}): unknown setting(s) {unknown}; "
                f"it accepts {sorted(accepted) or 'none'}"
            )
        missing = sorted(required - set(params))
        if missing:
            raise SuiteError(f"metric {label!r} ({self.name}): missing required setting(s) {missing}")
        kwargs = dict(params)
        if self.prepare is not None:
            try:
                kwargs = self.prepare(kwargs, suite_dir)
            except SuiteError:
                raise
            except Exception as exc:  # a prepare hook's own complaint, e.g. a bad regex
                raise SuiteError(f"metric {label!r} ({self.name}): {exc}") from exc
        return BoundMetric(self, kwargs, wants_ctx)


@dataclass(frozen=True)
class BoundMetric:
    metric: Metric
    kwargs: dict[str, Any]
    wants_ctx: bool

    async def score(self, sample: Any, output: Any, ctx: MetricContext) -> Score:
        kwargs = {**self.kwargs, **({"ctx": ctx} if self.wants_ctx else {})}
        result = self.metric.fn(sample, output, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return to_score(result)


def to_score(result: Any) -> Score:
    if isinstance(result, Score):
        return result
    if result is None:
        return Score(None)
    if isinstance(result, bool):
        return Score(1.0 if result else 0.0)
    if isinstance(result, int | float):
        value = float(result)
        return Score(None if math.isnan(value) else value)
    raise TypeError(f"a metric must return a number, a bool, None or Score, not {type(result).__name__}")


class MetricRegistry:
    """Name → Metric. Explicit registration only; `get` of an unknown name lists what exists."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self.plugins: set[str] = set()  # modules whose register_metrics() already ran here

    def register(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        aggregate: Aggregate = mean_aggregate,
        primary: str = "mean",
        higher_is_better: bool = True,
        directions: Mapping[str, Direction] | None = None,
        regression: bool = True,
        description: str = "",
        prepare: Prepare | None = None,
        replace: bool = False,
    ) -> Metric:
        if name in self._metrics and not replace:
            raise ValueError(f"metric {name!r} is already registered (pass replace=True to override)")
        params = list(inspect.signature(fn).parameters.values())
        if len(params) < 2 or any(p.kind == p.KEYWORD_ONLY for p in params[:2]):
            raise TypeError(f"metric {name!r}: the function must take (sample, output, *, settings...)")
        metric = Metric(name, fn, aggregate, primary, higher_is_better, dict(directions or {}), regression,
                        description or (inspect.getdoc(fn) or "").split("\n")[0], prepare)
        self._metrics[name] = metric
        return metric

    def get(self, name: str) -> Metric:
        try:
            return self._metrics[name]
        except KeyError:
            raise UnknownMetric(name, list(self._metrics)) from None

    def names(self) -> list[str]:
        return sorted(self._metrics)

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._metrics.values())
