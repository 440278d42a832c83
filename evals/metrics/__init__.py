"""Metrics: a registry of small functions. `default_registry()` holds the built-ins, registered the same
way an extension registers its own (see `evals.metrics.base` for the function contract)."""

from __future__ import annotations

import importlib

from evals.errors import SuiteError
from evals.metrics import guardrail, judge, ops, retrieval, semantic, text
from evals.metrics.base import (
    BoundMetric,
    Metric,
    MetricContext,
    MetricRegistry,
    Score,
    mean_aggregate,
    percentile,
)


def register_builtins(registry: MetricRegistry) -> None:
    r = registry.register
    r("exact_match", text.exact_match)
    r("contains", text.contains, prepare=text._prepare_contains)
    r("regex", text.regex, prepare=text._prepare_regex)
    r("json_valid", text.json_valid)
    r("json_schema", text.json_schema, prepare=text._prepare_schema)
    r("semantic_similarity", semantic.semantic_similarity)
    r("llm_judge", judge.llm_judge, aggregate=judge.judge_aggregate, directions={"parse_rate": "min"},
      prepare=judge._prepare_judge)
    r("guardrail", guardrail.guardrail, aggregate=guardrail.guardrail_aggregate, primary="accuracy",
      directions=guardrail.DIRECTIONS)
    r("hit_at_k", retrieval.hit_at_k)
    r("recall_at_k", retrieval.recall_at_k)
    r("mrr", retrieval.mrr)
    r("context_precision", retrieval.context_precision)
    r("latency", ops.latency, aggregate=ops.latency_aggregate, primary="p95", higher_is_better=False,
      regression=False)
    r("tokens", ops.tokens, aggregate=ops.tokens_aggregate, primary="mean", higher_is_better=False,
      directions={"sum": "max", "prompt_sum": "max", "completion_sum": "max"}, regression=False,
      prepare=ops._prepare_tokens)
    r("cost", ops.cost, aggregate=ops.cost_aggregate, primary="total", higher_is_better=False,
      directions={"total": "max"}, regression=False, prepare=ops._prepare_cost)


def default_registry() -> MetricRegistry:
    registry = MetricRegistry()
    register_builtins(registry)
    return registry


def load_plugins(registry: MetricRegistry, modules: list[str]) -> None:
    """Import each module and call its `register_metrics(registry)`."""
    for name in modules:
        if name in registry.plugins:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise SuiteError(f"metric plugin {name!r} cannot be imported: {err}") from None
        hook = getattr(module, "register_metrics", None)
        if not callable(hook):
            raise SuiteError(f"metric plugin {name!r} has no register_metrics(registry) function")
        hook(registry)
        registry.plugins.add(name)


__all__ = ["BoundMetric", "Metric", "MetricContext", "MetricRegistry", "Score", "default_registry",
           "load_plugins", "mean_aggregate", "percentile", "register_builtins"]
