"""LLM-as-judge: the score parser on replies a small model really gives, and the metric's mapping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evals.dataset import Sample
from evals.errors import SuiteError
from evals.metrics import MetricContext, default_registry
from evals.metrics.judge import judge_aggregate, parse_score
from evals.outputs import Output


@pytest.mark.parametrize(("reply", "want"), [
    ("Score: 4", 4),
    ("score:5", 5),
    ("**Score:** 3", 3),
    ('{"score": 2, "reason": "vague"}', 2),
    ('Here you go: {"rating": "4"}', 4),
    ("I would rate this 4/5 because it is mostly right.", 4),
    ("4 out of 5", 4),
    ("The rating is four.", 4),
    ("3", 3),
    ("3.5", 3.5),
    ("Score: 4/5", 4),
    ("The answer mentions 2 facts. Score: 5", 5),
    ("Score: [4]", 4),
    ("Score: 9", None),             # out of range
    ("I cannot grade this.", None),
    ("Paris has 2 million people and 20 districts.", None),  # ambiguous numbers are not a grade
    ("", None),
    ("Score: N", None),
])
def test_parse_score(reply: str, want: float | None) -> None:
    assert parse_score(reply, 1, 5) == want


def test_parse_score_other_scale() -> None:
    assert parse_score("Score: 8", 0, 10) == 8
    assert parse_score("7/10", 0, 10) == 7


def _run(reply: str, **params: object) -> tuple[float | None, object]:
    async def judge(model: str, messages: list[dict[str, str]], p: dict[str, object]) -> str:
        assert "Rubric: be right" in messages[1]["content"] and "Reference answer: Paris" in messages[1]["content"]
        assert p["temperature"] == 0
        return reply

    bound = default_registry().get("llm_judge").bind({"rubric": "be right", **params}, Path("."))
    ctx = MetricContext(Path("."), judge=judge)
    sc = asyncio.run(bound.score(Sample("q", {"input": "Capital of France?", "expected": "Paris"}), Output(text="Paris"), ctx))
    return sc.value, sc.detail


def test_judge_maps_scale_to_unit_interval_and_keeps_raw_reply() -> None:
    value, detail = _run("Score: 4")
    assert value == 0.75 and detail["raw"] == "Score: 4"  # type: ignore[index]
    value, detail = _run("no idea")
    assert value is None and detail["parse_error"] is True  # type: ignore[index]
    value, _ = _run("Score: 10", scale=[0, 10])
    assert value == 1.0


def test_judge_aggregate_reports_parse_rate() -> None:
    from evals.metrics import Score

    stats = judge_aggregate([Score(1.0, {"raw": "5"}), Score(None, {"raw": "?", "parse_error": True}),
                             Score(0.5, {"raw": "3"}), Score(None, "call failed")])
    assert stats["mean"] == 0.75 and stats["parse_rate"] == pytest.approx(2 / 3)


def test_judge_settings_are_checked() -> None:
    reg = default_registry()
    with pytest.raises(SuiteError, match="missing required setting"):
        reg.get("llm_judge").bind({}, Path("."))
    with pytest.raises(SuiteError, match="scale"):
        reg.get("llm_judge").bind({"rubric": "x", "scale": [5, 1]}, Path("."))
