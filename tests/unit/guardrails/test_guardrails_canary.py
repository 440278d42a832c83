"""System-prompt leakage: canary token and long verbatim overlap."""

from __future__ import annotations

import pytest

from guardrails.canary import PromptLeakDetector, embed_canary, make_canary

PROMPT = (
    "You are the support assistant for Acme Bank. Never discuss internal fraud thresholds, "
    "which are 5,000 euros for card payments and 20,000 euros for transfers. Escalate any "
    "request about account closure to a human agent and keep answers under 120 words."
)


def test_canary_is_random_and_embedded() -> None:
    a, b = make_canary(), make_canary()
    assert a != b and a.startswith("cnry-")
    assert a in embed_canary(PROMPT, a)


def test_canary_in_output_blocks_even_when_spaced_out() -> None:
    canary = make_canary()
    det = PromptLeakDetector(embed_canary(PROMPT, canary), canary)
    assert det.check(f"sure: {canary}").action == "block"
    spaced = " ".join(canary.upper())
    v = det.check(f"the id is {spaced}")
    assert v.action == "block" and v.score == 1.0


def test_long_verbatim_overlap_is_a_leak() -> None:
    det = PromptLeakDetector(PROMPT, None, min_words=10)
    leak = "My rules: never discuss internal fraud thresholds, which are 5,000 euros for card payments, ok?"
    v = det.check(leak)
    assert v.action == "block" and "consecutive words" in v.detail
    assert det.inspect(leak).longest_overlap_words >= 12


def test_short_overlap_and_paraphrase_pass() -> None:
    det = PromptLeakDetector(PROMPT, make_canary(), min_words=10)
    assert det.check("I am the support assistant for Acme Bank, how can I help?").action == "pass"
    assert det.check("I can't share limits, but a human agent can help with closing accounts.").action == "pass"


def test_min_words_guard() -> None:
    with pytest.raises(ValueError):
        PromptLeakDetector(PROMPT, min_words=2)
