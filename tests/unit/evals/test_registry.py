"""The metric registry: explicit registration, errors that list what exists, plugins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evals.dataset import Sample
from evals.errors import SuiteError, UnknownMetric
from evals.metrics import MetricContext, MetricRegistry, Score, default_registry, load_plugins
from evals.outputs import Output

BUILTINS = {"exact_match", "contains", "regex", "json_valid", "json_schema", "semantic_similarity", "llm_judge",
            "guardrail", "hit_at_k", "recall_at_k", "mrr", "context_precision", "latency", "tokens", "cost"}


def test_builtins_are_registered() -> None:
    assert set(default_registry().names()) == BUILTINS


def test_unknown_metric_lists_what_exists() -> None:
    with pytest.raises(UnknownMetric) as err:
        default_registry().get("contain")
    assert "unknown metric 'contain'" in str(err.value)
    assert "contains" in str(err.value) and "exact_match" in str(err.value)


def test_settings_are_checked_against_the_function() -> None:
    metric = default_registry().get("contains")
    with pytest.raises(SuiteError, match=r"unknown setting\(s\) \['case'\].*accepts \['case_sensitive', 'field', 'mode'\]"):
        metric.bind({"case": True}, Path("."))
    with pytest.raises(SuiteError, match="mode must be"):
        metric.bind({"mode": "some"}, Path("."))


def test_register_a_small_function_and_duplicates() -> None:
    reg = MetricRegistry()

    def shouts(sample: Sample, output: Output, *, ratio: float = 0.5) -> bool:
        text = output.text or ""
        return sum(c.isupper() for c in text) >= ratio * max(1, len(text))

    reg.register("shouts", shouts, description="mostly upper case")
    bound = reg.get("shouts").bind({"ratio": 0.9}, Path("."))
    assert asyncio.run(bound.score(Sample("a"), Output(text="HELLO"), MetricContext(Path(".")))) == Score(1.0)
    assert asyncio.run(bound.score(Sample("a"), Output(text="Hello"), MetricContext(Path(".")))) == Score(0.0)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("shouts", shouts)
    with pytest.raises(TypeError, match="sample, output"):
        reg.register("bad", lambda *, x: x)


def test_plugins_register_through_a_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "short_answer_plugin.py").write_text(
        "def word_count(sample, output, *, at_most=10):\n"
        "    return len((output.text or '').split()) <= at_most\n\n"
        "def register_metrics(registry):\n"
        "    registry.register('short_answer', word_count)\n")
    (tmp_path / "no_hook.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = default_registry()
    load_plugins(reg, ["short_answer_plugin"])
    load_plugins(reg, ["short_answer_plugin"])  # idempotent per registry
    assert "short_answer" in reg
    with pytest.raises(SuiteError, match="register_metrics"):
        load_plugins(reg, ["no_hook"])
    with pytest.raises(SuiteError, match="cannot be imported"):
        load_plugins(reg, ["no_such_module_xyz"])
