"""The official openai SDK against a running gateway: the acceptance client."""

from __future__ import annotations

import asyncio
import base64
import json
import math

import httpx
import numpy as np
import openai
import pytest
from transformers import AutoTokenizer

from tests.conftest import ADMIN_KEY, Gateway
from tests.support.procs import ROOT

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(ROOT / "models/smollm2")


def test_list_and_get_models(gateway: Gateway) -> None:
    client = gateway.client()
    ids = {m.id for m in client.models.list()}
    assert {"smollm2", "text-embedding-minilm", "fake-good"} <= ids
    assert client.models.retrieve("smollm2").id == "smollm2"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_local_model_answers_with_exact_usage(gateway: Gateway, tokenizer) -> None:  # type: ignore[no-untyped-def]
    resp = gateway.client().chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=24, temperature=0
    )
    assert resp.object == "chat.completion"
    assert "Paris" in resp.choices[0].message.content
    templated = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    expected_prompt = len(tokenizer(templated, add_special_tokens=False)["input_ids"])
    assert resp.usage.prompt_tokens == expected_prompt
    assert 0 < resp.usage.completion_tokens <= 24
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_chat_max_tokens_gives_length(gateway: Gateway) -> None:
    resp = gateway.client().chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        max_completion_tokens=5, temperature=0,
    )
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.completion_tokens == 5


def test_text_parts_and_system_message(gateway: Gateway) -> None:
    resp = gateway.client().chat.completions.create(
        model="smollm2",
        messages=[
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]},
        ],
        max_tokens=16, temperature=0,
    )
    assert resp.choices[0].message.content


def test_stream_matches_non_stream_and_reports_usage(gateway: Gateway) -> None:
    # A key without output rails: tokens are released as they come (rails release whole windows).
    client = gateway.client(key="sk-test-norails")
    whole = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=20, temperature=0)
    chunks = list(client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=20, temperature=0, stream=True,
        stream_options={"include_usage": True},
    ))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) > 2, "the answer must arrive in pieces, not at once"
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens == whole.usage.prompt_tokens
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_stream_with_output_rails_delivers_the_same_answer(gateway: Gateway) -> None:
    client = gateway.client()
    whole = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=20, temperature=0)
    chunks = list(client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=20, temperature=0,
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content


def test_stream_without_usage_option_has_no_usage(gateway: Gateway) -> None:
    chunks = list(gateway.client().chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=4, stream=True))
    assert all(c.usage is None for c in chunks)


def test_stop_sequence(gateway: Gateway) -> None:
    client = gateway.client()
    base = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=20, temperature=0)
    words = base.choices[0].message.content.split()
    assert len(words) >= 3
    stop = words[2]
    cut = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=20, temperature=0, stop=[stop])
    assert stop not in cut.choices[0].message.content
    assert cut.choices[0].finish_reason == "stop"
    assert base.choices[0].message.content.startswith(cut.choices[0].message.content)


def test_seed_makes_sampling_reproducible(gateway: Gateway) -> None:
    client = gateway.client()
    kw = dict(model="smollm2", messages=[{"role": "user", "content": "Name an animal."}], max_tokens=12,
              temperature=1.0, top_p=0.95, seed=1234)
    a = client.chat.completions.create(**kw).choices[0].message.content  # type: ignore[arg-type]
    b = client.chat.completions.create(**kw).choices[0].message.content  # type: ignore[arg-type]
    assert a == b


def test_legacy_completions(gateway: Gateway, tokenizer) -> None:  # type: ignore[no-untyped-def]
    prompt = "The capital of France is"
    resp = gateway.client().completions.create(model="smollm2", prompt=prompt, max_tokens=6, temperature=0)
    assert resp.object == "text_completion"
    assert resp.choices[0].text
    assert resp.usage.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    chunks = list(gateway.client().completions.create(model="smollm2", prompt=prompt, max_tokens=6, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == resp.choices[0].text


def test_embeddings_float_and_base64(gateway: Gateway) -> None:
    client = gateway.client()
    one = client.embeddings.create(model="text-embedding-minilm", input="hello world", encoding_format="float")
    assert len(one.data) == 1 and len(one.data[0].embedding) == 384
    assert math.isclose(float(np.linalg.norm(one.data[0].embedding)), 1.0, rel_tol=1e-4)
    assert one.usage.prompt_tokens > 0
    many = client.embeddings.create(model="text-embedding-minilm", input=["hello world", "goodbye"])
    assert [d.index for d in many.data] == [0, 1]
    # The SDK asks for base64 by default and decodes it; check the raw wire too.
    raw = httpx.post(f"{gateway.url}/v1/embeddings", headers={"authorization": "Bearer sk-test-client"},
                     json={"model": "text-embedding-minilm", "input": "hello world", "encoding_format": "base64"}).json()
    vec = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vec, one.data[0].embedding, atol=1e-6)
    assert np.allclose(many.data[0].embedding, one.data[0].embedding, atol=1e-5)


def test_async_client(gateway: Gateway) -> None:
    async def run() -> None:
        client = gateway.async_client()
        models = await client.models.list()
        assert any(m.id == "smollm2" for m in models.data)
        resp = await client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=8)
        assert resp.choices[0].message.content
        stream = await client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=8, stream=True)
        parts = [c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content]
        assert parts
        emb = await client.embeddings.create(model="text-embedding-minilm", input="x")
        assert len(emb.data[0].embedding) == 384
        await client.close()

    asyncio.run(run())


# -- errors: every one OpenAI-shaped, and the SDK raises the matching class -----------------------

def _assert_shape(body: dict) -> None:  # type: ignore[type-arg]
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])


def test_missing_and_wrong_key_are_401(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        gateway.client(key="wrong").models.list()
    resp = httpx.get(f"{gateway.url}/v1/models")
    assert resp.status_code == 401
    _assert_shape(resp.json())


def test_unknown_model_is_404(gateway: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        gateway.client().chat.completions.create(model="nope", messages=QUESTION)
    assert exc.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_invalid_bodies_are_400(gateway: Gateway) -> None:
    client = gateway.client()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2", messages=[])
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=-1)
    assert exc.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2", messages=QUESTION, n=2)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="smollm2", input="x")
    for raw in (b"{not json", b'{"model": "smollm2", "messages": "hi"}', b"[]"):
        resp = httpx.post(f"{gateway.url}/v1/chat/completions", content=raw,
                          headers={"authorization": "Bearer sk-test-client", "content-type": "application/json"})
        assert resp.status_code == 400, raw
        _assert_shape(resp.json())


def test_tools_on_local_model_is_clear_400(gateway: Gateway) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as exc:
        gateway.client().chat.completions.create(model="smollm2", messages=QUESTION, tools=[tool])  # type: ignore[list-item]
    assert exc.value.body["param"] == "tools"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as exc:
        gateway.client().chat.completions.create(model="smollm2", messages=QUESTION, response_format={"type": "json_object"})
    assert exc.value.body["param"] == "response_format"  # type: ignore[index]


def test_tools_pass_through_to_providers(gateway: Gateway) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    resp = gateway.client().chat.completions.create(model="fake-good", messages=QUESTION, tools=[tool])  # type: ignore[list-item]
    assert resp.choices[0].message.content


def test_unknown_route_and_method_are_openai_shaped(gateway: Gateway) -> None:
    resp = httpx.get(f"{gateway.url}/v1/nothing-here", headers={"authorization": "Bearer sk-test-client"})
    assert resp.status_code == 404
    _assert_shape(resp.json())
    resp = httpx.get(f"{gateway.url}/v1/chat/completions", headers={"authorization": "Bearer sk-test-client"})
    assert resp.status_code == 405
    _assert_shape(resp.json())


def test_oversized_body_is_413(gateway: Gateway) -> None:
    big = {"model": "smollm2", "messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]}
    headers = {"authorization": "Bearer sk-test-client"}
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, json=big)
    assert resp.status_code == 413
    _assert_shape(resp.json())

    def chunked():  # type: ignore[no-untyped-def]  # no Content-Length: the body is counted as it comes
        data = json.dumps(big).encode()
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    resp = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, content=chunked())
    assert resp.status_code == 413
    _assert_shape(resp.json())
    with pytest.raises(openai.APIStatusError) as exc:
        gateway.client().chat.completions.create(model="smollm2", messages=big["messages"])  # type: ignore[arg-type]
    assert exc.value.status_code == 413


def test_request_id_echoed_or_generated(gateway: Gateway) -> None:
    resp = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": "Bearer sk-test-client", "x-request-id": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    resp = httpx.get(f"{gateway.url}/v1/models")  # even on a 401
    assert len(resp.headers["x-request-id"]) >= 16


def test_health_and_ready(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.url}/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["models"]["smollm2"] is True


def test_admin_key_also_serves_clients(gateway: Gateway) -> None:
    assert gateway.client(key=ADMIN_KEY).models.list().data
