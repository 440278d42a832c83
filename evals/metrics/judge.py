"""LLM-as-judge: any model the gateway routes grades each answer against a rubric.

The judge is called through the same gateway as the target (so offline it can be the local
`smollm2`), at temperature 0, and its replies are cached like the target's outputs. The score is
parsed robustly (`parse_score`): a JSON object with "score", "Score: 4", "4/5", "4 out of 5",
"rating is four", or a lone in-range number; anything else is a parse failure, reported as
`parse_rate` and left out of the mean (never counted as a pass).

Caveat: SmolLM2-135M is far too weak to be a trustworthy judge. It often echoes the scale or gives
every answer the same score; use it to exercise the plumbing offline, and route the judge to a
capable model (`model: gpt-4o-mini`) for real grading. Check `parse_rate` and spot-read the
`raw` replies in the report before trusting a judge.
"""

from __future__ import annotations

import json
import re
import statistics
from typing import Any

from evals.dataset import Sample
from evals.errors import SuiteError
from evals.metrics.base import MetricContext, Score
from evals.outputs import Output

_NUM = r"(-?\d+(?:\.\d+)?)"
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10}
_WORD = r"(" + "|".join(_WORDS) + r")"

SYSTEM = ("You are a strict grader. You read a rubric, a question and an answer, and you grade the answer. "
          "Reply with one line: 'Score: N', where N is an integer from {lo} to {hi}.")
USER = ("Rubric: {rubric}\n\nQuestion: {question}\n{reference}Answer to grade: {answer}\n\n"
        "Grade the answer from {lo} (does not meet the rubric) to {hi} (fully meets it). Reply 'Score: N'.")


def _in_range(value: float, lo: float, hi: float) -> bool:
    return lo <= value <= hi


def parse_score(text: str, lo: float = 1, hi: float = 5) -> float | None:
    """The grade in a judge's reply, or None when it cannot be read unambiguously."""
    if not text:
        return None
    low = text.lower().replace("**", "")
    # 1. a JSON object with a score
    for blob in re.findall(r"\{[^{}]*\}", low):
        try:
            obj = json.loads(blob)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for key in ("score", "rating", "grade"):
                value = obj.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool) and _in_range(value, lo, hi):
                    return float(value)
                if isinstance(value, str):
                    try:
                        fv = float(value)
                    except ValueError:
                        continue
                    if _in_range(fv, lo, hi):
                        return fv
    hi_s = f"{hi:g}"
    patterns = [
        rf"(?:score|rating|grade)\s*(?:is|of|was|would be|:|=|-)?\s*\[?\s*{_NUM}\s*\]?(?!\s*(?:/|out of)\s*(?!{hi_s}\b)\d)",
        rf"{_NUM}\s*(?:/|out of)\s*{re.escape(hi_s)}\b",
        rf"(?:score|rating|grade)\s*(?:is|of|was|would be|:|=|-)?\s*{_WORD}\b",
        rf"\b{_WORD}\s*(?:/|out of)\s*{re.escape(hi_s)}\b",
    ]
    for pattern in patterns:
        for match in re.finditer(pattern, low):
            token = match.group(1)
            value = float(_WORDS[token]) if token in _WORDS else float(token)
            if _in_range(value, lo, hi):
                return value
    # 2. a reply that is nothing but a number
    stripped = low.strip().strip(".!")
    try:
        value = float(stripped)
        return value if _in_range(value, lo, hi) else None
    except ValueError:
        pass
    # 3. exactly one distinct in-range number in the whole reply
    numbers = {float(n) for n in re.findall(r"(?<![\d.])-?\d+(?:\.\d+)?(?![\d.])", low)}
    in_range = {n for n in numbers if _in_range(n, lo, hi)}
    if len(in_range) == 1 and len(numbers) == 1:
        return in_range.pop()
    return None


def _question(sample: Sample, field: str) -> str:
    value = sample.get(field)
    if value is None and isinstance(sample.get("messages"), list):
        users = [m.get("content", "") for m in sample.get("messages") if isinstance(m, dict) and m.get("role") == "user"]
        value = users[-1] if users else ""
    return str(value or "")


async def llm_judge(sample: Sample, output: Output, *, ctx: MetricContext, rubric: str, model: str = "smollm2",
                    scale: list[float] | None = None, input_field: str = "input", reference_field: str = "expected",
                    max_tokens: int = 32, temperature: float = 0.0) -> Score:
    """Score from a judge model, mapped to 0..1 over `scale` (default 1..5)."""
    lo, hi = scale or [1, 5]
    if ctx.judge is None:
        raise SuiteError("llm_judge needs a gateway to call the judge model")
    reference = sample.get(reference_field)
    ref_text = ""
    if reference not in (None, "", []):
        ref_text = f"Reference answer: {', '.join(map(str, reference)) if isinstance(reference, list) else reference}\n"
    messages = [
        {"role": "system", "content": SYSTEM.format(lo=f"{lo:g}", hi=f"{hi:g}")},
        {"role": "user", "content": USER.format(rubric=rubric, question=_question(sample, input_field),
                                                reference=ref_text, answer=output.text or "(no answer)",
                                                lo=f"{lo:g}", hi=f"{hi:g}")},
    ]
    reply = await ctx.judge(model, messages, {"temperature": temperature, "max_tokens": max_tokens, "seed": ctx.seed})
    value = parse_score(reply, lo, hi)
    if value is None:
        return Score(None, {"raw": reply[:500], "parse_error": True})
    return Score((value - lo) / (hi - lo), {"raw": reply[:500], "score": value})


def judge_aggregate(scores: list[Score]) -> dict[str, float | None]:
    values = [s.value for s in scores if s.value is not None]
    asked = [s for s in scores if isinstance(s.detail, dict)]
    return {
        "mean": statistics.fmean(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "parse_rate": len(values) / len(asked) if asked else None,
        "n": float(len(scores)), "scored": float(len(values)),
    }


def _prepare_judge(params: dict[str, Any], _: Any) -> dict[str, Any]:
    scale = params.get("scale")
    if scale is not None and (not isinstance(scale, list) or len(scale) != 2 or not scale[0] < scale[1]):
        raise SuiteError("llm_judge: scale must be [low, high] with low < high")
    if not str(params.get("rubric", "")).strip():
        raise SuiteError("llm_judge: rubric must not be empty")
    return params
