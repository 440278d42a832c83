"""Operational metrics: latency, tokens and cost. Lower is better; none of them counts as a regression
against a baseline unless its entry sets a `tolerance` (timings vary between machines).

Latency is the target call as the runner timed it (retries included). A cached output keeps the
latency of the call that produced it: measure latency with `--no-cache`.
"""

from __future__ import annotations

import statistics
from typing import Any

from evals.dataset import Sample
from evals.errors import SuiteError
from evals.metrics.base import Score, percentile
from evals.outputs import Output


def latency(sample: Sample, output: Output) -> Score:
    """Milliseconds for the target call."""
    return Score(output.latency_ms, {"cached": output.cached})


def latency_aggregate(scores: list[Score]) -> dict[str, float | None]:
    values = [s.value for s in scores if s.value is not None]
    return {
        "mean": statistics.fmean(values) if values else None,
        "p50": percentile(values, 50), "p90": percentile(values, 90),
        "p95": percentile(values, 95), "p99": percentile(values, 99),
        "min": min(values) if values else None, "max": max(values) if values else None,
        "n": float(len(scores)), "scored": float(len(values)),
    }


def tokens(sample: Sample, output: Output, *, kind: str = "total") -> Score:
    """Tokens per item from the response's usage (kind: total, prompt or completion)."""
    key = f"{kind}_tokens"
    if key not in output.usage:
        return Score(None, "no usage in the response")
    return Score(float(output.usage[key]), dict(output.usage))


def tokens_aggregate(scores: list[Score]) -> dict[str, float | None]:
    values = [s.value for s in scores if s.value is not None]
    usages = [s.detail for s in scores if isinstance(s.detail, dict)]
    return {
        "mean": statistics.fmean(values) if values else None,
        "max": max(values) if values else None,
        "min": min(values) if values else None,
        "sum": float(sum(values)),
        "prompt_sum": float(sum(u.get("prompt_tokens", 0) for u in usages)),
        "completion_sum": float(sum(u.get("completion_tokens", 0) for u in usages)),
        "n": float(len(scores)), "scored": float(len(values)),
    }


def cost(sample: Sample, output: Output, *, prices: dict[str, dict[str, float]] | None = None,
         input_per_mtok: float | None = None, output_per_mtok: float | None = None) -> Score:
    """US dollars per item from usage and prices per million tokens (per model, or one pair for all)."""
    if not output.usage:
        return Score(None, "no usage in the response")
    price: dict[str, Any] = {}
    if prices and output.model:
        price = prices.get(output.model) or next(
            (v for k, v in prices.items() if output.model.endswith(k) or k.endswith(output.model)), {})
    pin = price.get("input", input_per_mtok)
    pout = price.get("output", output_per_mtok)
    if pin is None or pout is None:
        return Score(None, f"no price for model {output.model!r}")
    usd = (output.usage.get("prompt_tokens", 0) * pin + output.usage.get("completion_tokens", 0) * pout) / 1e6
    return Score(usd)


def cost_aggregate(scores: list[Score]) -> dict[str, float | None]:
    values = [s.value for s in scores if s.value is not None]
    return {
        "total": float(sum(values)),
        "mean": statistics.fmean(values) if values else None,
        "max": max(values) if values else None,
        "n": float(len(scores)), "scored": float(len(values)),
    }


def _prepare_cost(params: dict[str, Any], _: Any) -> dict[str, Any]:
    if not params.get("prices") and (params.get("input_per_mtok") is None or params.get("output_per_mtok") is None):
        raise SuiteError("cost: set 'prices' ({model: {input, output}} per million tokens) or both "
                         "'input_per_mtok' and 'output_per_mtok'")
    return params


def _prepare_tokens(params: dict[str, Any], _: Any) -> dict[str, Any]:
    if params.get("kind", "total") not in ("total", "prompt", "completion"):
        raise SuiteError("tokens: kind must be total, prompt or completion")
    return params
