"""Retries, fallbacks, timeouts, cooldowns and broken streams, against a fake provider that fails
on demand (the one place a stand-in upstream is allowed)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import Gateway

HI = [{"role": "user", "content": "Say hi."}]


def _calls(fake_provider: str) -> dict[str, int]:
    return httpx.get(f"{fake_provider}/stats").json()  # type: ignore[no-any-return]


def test_retries_recover_a_flaky_provider(gateway: Gateway, fake_provider: str) -> None:
    resp = gateway.client().chat.completions.create(model="fake-flaky", messages=HI)
    assert resp.choices[0].message.content == "Hello from the fake provider."
    assert _calls(fake_provider)["flaky-2-a"] == 3  # two injected failures, then success


def test_fallback_to_the_local_model(gateway: Gateway) -> None:
    resp = gateway.client().chat.completions.create(model="fake-broken", messages=HI, max_tokens=8)
    assert resp.model == "smollm2"
    assert resp.choices[0].message.content


def test_exhausted_retries_are_502(gateway: Gateway) -> None:
    with pytest.raises(openai.InternalServerError) as exc:
        gateway.client().chat.completions.create(model="fake-down", messages=HI)
    assert exc.value.status_code in (502, 503)
    assert "Traceback" not in str(exc.value.body)


def test_timeout_is_504(gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as exc:
        gateway.client().chat.completions.create(model="fake-hang", messages=HI)
    assert exc.value.status_code == 504


def test_failing_deployment_is_cooled_down(gateway: Gateway, fake_provider: str) -> None:
    client = gateway.client()
    for _ in range(8):
        assert client.chat.completions.create(model="fake-cooldown", messages=HI).choices[0].message.content
    failures_before = _calls(fake_provider).get("error-500", 0)
    for _ in range(8):
        client.chat.completions.create(model="fake-cooldown", messages=HI)
    # Once cooled down, the failing deployment receives no more traffic.
    assert _calls(fake_provider).get("error-500", 0) == failures_before


def test_stream_cut_midway_ends_with_error_event(gateway: Gateway) -> None:
    # Without output rails, so that the text before the cut is released at once.
    stream = gateway.client(key="sk-test-norails", timeout=30).chat.completions.create(model="fake-cut", messages=HI, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received, "the part before the cut was delivered"
    assert "stream" in str(exc.value).lower()


def test_stalled_stream_ends_with_timeout_event(gateway: Gateway) -> None:
    stream = gateway.client(timeout=30).chat.completions.create(model="fake-stall", messages=HI, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_malformed_upstream_is_502(gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as exc:
        gateway.client().chat.completions.create(model="fake-malformed", messages=HI)
    assert exc.value.status_code == 502


def test_upstream_rejection_is_400_not_retried(gateway: Gateway, fake_provider: str) -> None:
    before = _calls(fake_provider).get("bad-request", 0)
    with pytest.raises(openai.BadRequestError):
        gateway.client().chat.completions.create(model="fake-rejects", messages=HI)
    assert _calls(fake_provider)["bad-request"] == before + 1


def test_litellm_path_streams_and_completes(gateway: Gateway) -> None:
    client = gateway.client()
    assert client.chat.completions.create(model="fake-litellm", messages=HI).choices[0].message.content
    text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="fake-litellm", messages=HI, stream=True) if c.choices)
    assert text == "Hello from the fake provider."
