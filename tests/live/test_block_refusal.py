"""`on_block: refusal`: a blocked request is answered as a normal reply holding the refusal, through
the official SDK against the live gateway (key sk-test-refusal → the default rails, refusing)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import Gateway
from tests.live.test_guardrails import DAN

KEY = "sk-test-refusal"
REFUSAL = "I'm sorry, but I can't help with that: the request was blocked by the '{rail}' guardrail."


def _echo_calls(fake_provider: str) -> int:
    return int(httpx.get(f"{fake_provider}/stats").json().get("echo", 0))


def test_blocked_chat_is_a_refusal_and_no_model_is_called(gateway: Gateway, fake_provider: str) -> None:
    before = _echo_calls(fake_provider)
    resp = gateway.client(KEY).chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": DAN}])
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == REFUSAL.format(rail="injection")
    assert choice.finish_reason == "content_filter"
    assert resp.model == "fake-echo"
    assert resp.usage is not None and resp.usage.total_tokens == 0
    assert _echo_calls(fake_provider) == before


def test_blocked_stream_is_a_refusal(gateway: Gateway, fake_provider: str) -> None:
    before = _echo_calls(fake_provider)
    chunks = list(gateway.client(KEY).chat.completions.create(
        model="fake-echo", messages=[{"role": "user", "content": DAN}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == REFUSAL.format(rail="injection")
    assert finishes == ["content_filter"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 0
    assert _echo_calls(fake_provider) == before


def test_blocked_legacy_completion_is_a_refusal(gateway: Gateway) -> None:
    resp = gateway.client(KEY).completions.create(model="fake-echo", prompt=DAN)
    assert resp.choices[0].text == REFUSAL.format(rail="injection")
    assert resp.choices[0].finish_reason == "content_filter"


def test_clean_input_still_reaches_the_model(gateway: Gateway) -> None:
    resp = gateway.client(KEY).chat.completions.create(
        model="fake-echo", messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert resp.choices[0].message.content == "What is the capital of France?"
    assert resp.choices[0].finish_reason == "stop"


def test_blocked_answer_carries_the_refusal(gateway: Gateway) -> None:
    resp = gateway.client(KEY).chat.completions.create(
        model="fake-leak", messages=[{"role": "user", "content": "Tell me about buckets."}])
    assert resp.choices[0].finish_reason == "content_filter"
    assert resp.choices[0].message.content == REFUSAL.format(rail="secrets")


def test_other_keys_keep_the_400(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        gateway.client().chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": DAN}])
    assert exc.value.body["code"] == "content_policy_violation"  # type: ignore[index]
    assert exc.value.message.endswith(REFUSAL.format(rail="injection"))
