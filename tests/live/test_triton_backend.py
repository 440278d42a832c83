"""TritonChatBackend against the real local-model server (PyTriton + Triton + the batching engine).

Needs the `local_triton` fixtures from tests/conftest_triton.py. Outputs are kept short
(small max_tokens); no timing thresholds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway import errors
from gateway.backends.base import Delta, GenerationRequest
from tests.conftest_triton import free_port

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]


def chat(messages: list[dict[str, Any]] = FRANCE, **kw: Any) -> GenerationRequest:
    kw.setdefault("max_tokens", 24)
    kw.setdefault("temperature", 0.0)
    return GenerationRequest(model="smollm2", messages=messages, **kw)


async def collect(backend: Any, request: GenerationRequest) -> list[Delta]:
    return [d async for d in backend.stream(request)]


def templated_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])


async def test_greedy_answer_names_paris(triton_backend: Any, triton_tokenizer: Any) -> None:
    backend = triton_backend()
    try:
        assert await backend.ready()
        gen = await backend.complete(chat())
    finally:
        await backend.aclose()
    assert "Paris" in gen.text
    assert gen.finish_reason == "stop"
    assert gen.usage.prompt_tokens == templated_tokens(triton_tokenizer, FRANCE)
    # the count includes the end-of-turn token the model emitted
    assert gen.usage.completion_tokens in (
        len(triton_tokenizer(gen.text, add_special_tokens=False)["input_ids"]),
        len(triton_tokenizer(gen.text, add_special_tokens=False)["input_ids"]) + 1,
    )


async def test_text_parts_and_system_message(triton_backend: Any, triton_tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "You answer in one short sentence."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is the capital"}, {"type": "text", "text": "of France?"}],
        },
    ]
    backend = triton_backend()
    try:
        gen = await backend.complete(chat(messages))
    finally:
        await backend.aclose()
    flat = [messages[0], {"role": "user", "content": "What is the capital\nof France?"}]
    assert gen.usage.prompt_tokens == templated_tokens(triton_tokenizer, flat)
    assert gen.text


async def test_stream_concatenates_to_the_greedy_answer(triton_backend: Any) -> None:
    backend = triton_backend()
    try:
        gen = await backend.complete(chat())
        deltas = await collect(backend, chat())
    finally:
        await backend.aclose()
    texts = [d.text for d in deltas if d.text]
    assert len(texts) >= 3, deltas
    assert "".join(texts) == gen.text
    final = deltas[-1]
    assert final.finish_reason == gen.finish_reason
    assert final.usage == gen.usage
    assert all(d.finish_reason is None for d in deltas[:-1])


async def test_max_tokens_gives_length(triton_backend: Any) -> None:
    backend = triton_backend()
    try:
        gen = await backend.complete(chat(max_tokens=3))
        deltas = await collect(backend, chat(max_tokens=3))
    finally:
        await backend.aclose()
    assert gen.finish_reason == "length"
    assert gen.usage.completion_tokens == 3
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage is not None and deltas[-1].usage.completion_tokens == 3
    assert "".join(d.text for d in deltas) == gen.text


async def test_stop_words_cut_the_text(triton_backend: Any) -> None:
    backend = triton_backend()
    try:
        full = await backend.complete(chat())
        assert "Paris" in full.text
        cut = await backend.complete(chat(stop=("Paris", "never-appears")))
        streamed = await collect(backend, chat(stop=("Paris",)))
    finally:
        await backend.aclose()
    expected = full.text[: full.text.index("Paris")]
    assert cut.text == expected
    assert cut.finish_reason == "stop"
    assert "".join(d.text for d in streamed) == expected
    assert streamed[-1].finish_reason == "stop"
    assert cut.usage.completion_tokens < full.usage.completion_tokens


async def test_stop_word_spanning_tokens(triton_backend: Any) -> None:
    backend = triton_backend()
    try:
        full = await backend.complete(chat())
        cut = await collect(backend, chat(stop=("of Fr",)))
    finally:
        await backend.aclose()
    assert "of France" in full.text
    assert "".join(d.text for d in cut) == full.text[: full.text.index("of Fr")]


async def test_eight_concurrent_streams(triton_backend: Any) -> None:
    questions = [
        "What is the capital of France?",
        "Name three colors.",
        "What is 2+2?",
        "Who wrote Hamlet?",
        "What is Python?",
        "Describe a cat.",
        "Why is the sky blue?",
        "Say hello.",
    ]
    backend = triton_backend()
    try:
        results = await asyncio.gather(
            *(collect(backend, chat([{"role": "user", "content": q}], max_tokens=16)) for q in questions)
        )
    finally:
        await backend.aclose()
    for deltas in results:
        final = deltas[-1]
        assert final.finish_reason in ("stop", "length")
        assert final.usage is not None and 1 <= final.usage.completion_tokens <= 16
        assert "".join(d.text for d in deltas).strip()
        if final.finish_reason == "length":
            assert final.usage.completion_tokens == 16


async def test_seed_makes_sampling_reproducible(triton_backend: Any) -> None:
    messages = [{"role": "user", "content": "Write one sentence about the sea."}]
    backend = triton_backend()
    try:
        a = await backend.complete(chat(messages, temperature=1.0, top_p=0.95, seed=1234, max_tokens=20))
        b = await backend.complete(chat(messages, temperature=1.0, top_p=0.95, seed=1234, max_tokens=20))
        others = [
            await backend.complete(chat(messages, temperature=1.0, top_p=0.95, seed=s, max_tokens=20))
            for s in (1, 2, 3)
        ]
    finally:
        await backend.aclose()
    assert a.text == b.text and a.usage == b.usage
    assert any(o.text != a.text for o in others)


async def test_legacy_prompt_completion(triton_backend: Any, triton_tokenizer: Any) -> None:
    prompt = "The capital of France is"
    backend = triton_backend()
    try:
        gen = await backend.complete(GenerationRequest(model="smollm2", prompt=prompt, max_tokens=4, temperature=0))
    finally:
        await backend.aclose()
    assert gen.usage.prompt_tokens == len(triton_tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert gen.text and gen.usage.completion_tokens <= 4


async def test_multibyte_text_streams_whole_characters(triton_backend: Any) -> None:
    messages = [{"role": "user", "content": "Répète exactement : « Ça coûte 5 € — très cher ! » 日本語 😀"}]
    backend = triton_backend()
    try:
        gen = await backend.complete(chat(messages, max_tokens=32))
        deltas = await collect(backend, chat(messages, max_tokens=32))
    finally:
        await backend.aclose()
    assert "".join(d.text for d in deltas) == gen.text
    assert all("\ufffd" not in d.text for d in deltas[:-1])


async def test_http_protocol_matches_grpc(triton_backend: Any) -> None:
    grpc_b, http_b = triton_backend("grpc"), triton_backend("http")
    try:
        assert await http_b.ready()
        g = await grpc_b.complete(chat(stop=("Paris",)))
        h = await http_b.complete(chat(stop=("Paris",)))
        hs = await collect(http_b, chat())
        gs = await grpc_b.complete(chat())
    finally:
        await grpc_b.aclose()
        await http_b.aclose()
    assert (h.text, h.finish_reason, h.usage) == (g.text, g.finish_reason, g.usage)
    assert "".join(d.text for d in hs) == gs.text
    assert hs[-1].usage == gs.usage


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_prompt_too_long(triton_backend: Any, protocol: str) -> None:
    long_prompt = "hello " * 9000
    checked = triton_backend(protocol)  # counts locally against context_length
    unchecked = triton_backend(protocol, context_length=None)  # the server refuses it
    try:
        for backend in (checked, unchecked):
            with pytest.raises(errors.InvalidRequest) as exc:
                await backend.complete(GenerationRequest(model="smollm2", prompt=long_prompt, max_tokens=2))
            assert exc.value.code == "context_length_exceeded"
            assert "Traceback" not in exc.value.message
    finally:
        await checked.aclose()
        await unchecked.aclose()


@pytest.mark.parametrize("param", ["tools", "response_format"])
async def test_unsupported_parameters(triton_backend: Any, param: str) -> None:
    value: Any = [{"type": "function", "function": {"name": "f"}}] if param == "tools" else {"type": "json_object"}
    backend = triton_backend()
    try:
        with pytest.raises(errors.UnsupportedParameter) as exc:
            await backend.complete(chat(extra={param: value}))
        with pytest.raises(errors.UnsupportedParameter):
            await collect(backend, chat(extra={param: value}))
    finally:
        await backend.aclose()
    assert exc.value.param == param and exc.value.status == 400


async def test_unknown_model_is_unavailable(local_triton: Any, triton_tokenizer: Any) -> None:
    from gateway.backends.triton import TritonChatBackend

    backend = TritonChatBackend(local_triton.grpc, "no-such-model", tokenizer=triton_tokenizer, timeout_s=30)
    try:
        assert not await backend.ready()
        with pytest.raises(errors.ServiceUnavailable):
            await backend.complete(chat())
    finally:
        await backend.aclose()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
async def test_triton_down_is_service_unavailable(triton_tokenizer: Any, protocol: str) -> None:
    from gateway.backends.triton import TritonChatBackend

    backend = TritonChatBackend(
        f"127.0.0.1:{free_port()}", "smollm2", protocol=protocol, tokenizer=triton_tokenizer, timeout_s=10
    )
    try:
        assert not await backend.ready()
        with pytest.raises(errors.ServiceUnavailable):
            await backend.complete(chat())
        with pytest.raises(errors.ServiceUnavailable):
            await collect(backend, chat())
    finally:
        await backend.aclose()


async def test_deadline_is_upstream_timeout(triton_backend: Any) -> None:
    backend = triton_backend(timeout_s=0.01)
    patient = triton_backend()
    try:
        with pytest.raises(errors.UpstreamTimeout):
            await backend.complete(chat(STORY, max_tokens=16))
        # The abandoned generation still runs on the server (PyTriton does not pass client
        # cancellation on). This one decodes in the same batch and needs more steps, so the other
        # has finished when it returns, and later tests see an idle server.
        gen = await patient.complete(chat(STORY, max_tokens=17))
        assert gen.text
    finally:
        await backend.aclose()
        await patient.aclose()
