"""The generation request path, top to bottom.

    authenticate (router dependency) → model access → resolve prompt → limits (admit)
    → input rails (a block: 400, or a refusal reply under `on_block: refusal`)
    → retrieval (+ retrieval rails) → build the request
    → model call (routing: retries, fallbacks) → output rails (whole answer, or streamed windows)
    → respond → settle, log, metrics

Each step is one call to its own module: `resolve_prompt` (prompts/), `Exchange` (limits, log,
metrics, traces: gateway/governance/), `guard.*` (guardrails/), `retrieval.augment` (rag/),
`Router` (gateway/routing.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from gateway import errors, guard, retrieval
from gateway.auth import Principal, check_model_access
from gateway.backends.base import Delta, Generation, GenerationRequest, Usage
from gateway.exchange import Exchange, estimate_tokens
from gateway.protocol import ChatCompletionRequest, CompletionRequest, RetrievalOptions
from gateway.services import Services
from gateway.sse import ChunkWriter, EventStreamResponse, chat_response, completion_response, new_id, relay
from prompts.models import PromptRef

# Parameters we map ourselves; everything else the client sent is passed through untouched.
_MAPPED = {
    "messages", "model", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "stop", "seed", "user", "stream", "stream_options", "n", "retrieval",
}
# Prompt defaults that fill request parameters the client left out (request values win).
_PROMPT_DEFAULTS = ("temperature", "top_p", "max_tokens", "stop", "seed", "response_format",
                    "presence_penalty", "frequency_penalty")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@dataclass
class Call:
    """The chat request after prompt resolution: messages and parameters to send."""

    messages: list[dict[str, Any]]
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    prompt_name: str | None = None
    prompt_version: int | None = None


def _stop(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)


def _check_common(svc: Services, body: ChatCompletionRequest | CompletionRequest, max_tokens: int | None) -> None:
    if body.n not in (None, 1):
        raise errors.UnsupportedParameter("Only n=1 is supported.", param="n")
    limit = svc.settings.server.max_tokens_limit
    if max_tokens is not None and max_tokens > limit:
        raise errors.InvalidRequest(f"max_tokens must be at most {limit}.", param="max_tokens")


def resolve_prompt(svc: Services, body: ChatCompletionRequest) -> Call:
    """Render a registry prompt named by reference; its messages go before the request's."""
    params = body.model_dump(exclude_none=True, exclude={"messages", "prompt", "retrieval"})
    params["max_tokens"] = body.max_completion_tokens or body.max_tokens
    params.pop("max_completion_tokens", None)
    messages = [m.model_dump(exclude_none=True) for m in body.messages]
    ref = body.prompt
    if ref is None:
        if not messages:
            raise errors.InvalidRequest("'messages' must not be empty.", param="messages")
        return Call(messages, params)
    if ref.label is not None and ref.version is not None:
        raise errors.InvalidRequest("Give the prompt's label or its version, not both.", param="prompt")
    try:
        prompt = PromptRef(name=ref.name, version=ref.version, label=ref.label)
    except ValidationError as e:  # the registry's own name/label rules (found by the fuzz drill)
        raise errors.InvalidRequest(f"Invalid prompt reference: {e.errors()[0]['msg']}", param="prompt") from None
    rendered = svc.prompts.render_ref(prompt, ref.variables)
    for key in _PROMPT_DEFAULTS:
        if params.get(key) is None and rendered.defaults.get(key) is not None:
            params[key] = rendered.defaults[key]
    call = Call([*(dict(m) for m in rendered.messages), *messages], params)
    call.prompt_name, call.prompt_version = rendered.name, rendered.version
    call.headers["x-prompt-version"] = str(rendered.version)
    call.headers["x-prompt-name"] = rendered.name
    return call


def begin(
    svc: Services, principal: Principal, endpoint: str, model: str, request_id: str, stream: bool,
    access_as: str | None = None,
) -> Exchange:
    """Check the key may use the model (or the alias it came through) and open the exchange."""
    check_model_access(principal, access_as or model)
    svc.router.kind_check(model, embedding=endpoint == "embeddings")
    return Exchange(svc.governance, principal, endpoint, model, request_id, stream=stream)


async def chat(svc: Services, principal: Principal, body: ChatCompletionRequest, request_id: str) -> Response:
    alias = svc.settings.rag_route(body.model)
    if alias is not None:  # a RAG route: its model, retrieving from its collection unless told otherwise
        body = body.model_copy(update={
            "model": alias.model,
            "retrieval": body.retrieval or RetrievalOptions(collection=alias.collection, top_k=alias.top_k,
                                                            filter=alias.filter),
        })
    ex = begin(svc, principal, "chat", body.model, request_id, bool(body.stream),
               access_as=alias.name if alias else None)
    return await _run(ex, _chat(svc, ex, body))


async def completion(svc: Services, principal: Principal, body: CompletionRequest, request_id: str) -> Response:
    ex = begin(svc, principal, "text_completion", body.model, request_id, bool(body.stream))
    return await _run(ex, _completion(svc, ex, body))


async def _run(ex: Exchange, work: Any) -> Response:
    """Finish the exchange here for JSON answers and errors; a stream finishes when it ends."""
    try:
        response: Response = await work
    except BaseException as exc:
        ex.failed(exc)
        await ex.finish()
        raise
    if not isinstance(response, StreamingResponse):
        await ex.finish()
    return response


async def _chat(svc: Services, ex: Exchange, body: ChatCompletionRequest) -> Response:
    call = resolve_prompt(svc, body)
    ex.prompt_name, ex.prompt_version = call.prompt_name, call.prompt_version
    max_tokens = call.params.get("max_tokens")
    _check_common(svc, body, max_tokens)
    if len(call.messages) > svc.settings.server.max_messages:
        raise errors.InvalidRequest(
            f"At most {svc.settings.server.max_messages} messages per request.", param="messages"
        )
    await ex.admit(estimate_tokens(call.messages), max_tokens)
    rails = guard.resolve(svc.guardrails, ex.principal, body.model)
    ex.verdicts = rails.verdicts
    ex.messages = call.messages
    messages = await guard.screen_input(svc.guardrails, rails, call.messages)
    if rails.refusal is not None:
        return _refuse(svc, ex, body, rails.refusal, call.headers, chat=True)
    cited: list[dict[str, Any]] | None = None
    if body.retrieval is not None:
        alias = svc.settings.rag_route(ex.model)
        prompt, label = (alias.prompt, alias.label) if alias else ("rag-answer", "production")
        messages, cited = await retrieval.augment(svc, ex.principal, rails, messages, body.retrieval, prompt, label)
    p = call.params
    request = GenerationRequest(
        model=body.model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=p.get("temperature"),
        top_p=p.get("top_p"),
        stop=_stop(p.get("stop")),
        seed=p.get("seed"),
        user=p.get("user"),
        extra={k: v for k, v in p.items() if k not in _MAPPED},
    )
    extra = {"citations": cited} if cited is not None else None
    return await _generate(svc, ex, body, request, rails, call.headers, chat=True, extra=extra)


async def _completion(svc: Services, ex: Exchange, body: CompletionRequest) -> Response:
    _check_common(svc, body, body.max_tokens)
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise errors.UnsupportedParameter("Send exactly one prompt string per request.", param="prompt")
        prompt = prompt[0]
    turn = [{"role": "user", "content": prompt}]
    await ex.admit(estimate_tokens(turn), body.max_tokens)
    rails = guard.resolve(svc.guardrails, ex.principal, body.model)
    ex.verdicts = rails.verdicts
    ex.messages = turn
    screened = await guard.screen_input(svc.guardrails, rails, turn)
    if rails.refusal is not None:
        return _refuse(svc, ex, body, rails.refusal, {}, chat=False)
    request = GenerationRequest(
        model=body.model,
        prompt=screened[0]["content"],
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=_stop(body.stop),
        seed=body.seed,
        user=body.user,
        extra=body.model_dump(exclude_none=True, exclude=_MAPPED),
    )
    return await _generate(svc, ex, body, request, rails, {}, chat=False)


async def _generate(
    svc: Services,
    ex: Exchange,
    body: ChatCompletionRequest | CompletionRequest,
    request: GenerationRequest,
    rails: guard.Guard,
    headers: dict[str, str],
    *,
    chat: bool,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Call the model; `extra` (citations) goes into the JSON body or the stream's last chunk."""
    cid = ex.completion_id = new_id("chatcmpl" if chat else "cmpl")
    headers = {**headers, **ex.headers}
    if body.stream:
        deltas, model = await svc.router.stream(request)
        if rails.screens_output:
            deltas = guard.guard_stream(rails, deltas)
        return _stream_answer(svc, ex, body, deltas, cid, model, headers, chat=chat, final=extra)
    gen, model = await svc.router.complete(request)
    ex.usage = gen.usage  # charged even if the output rails block it below
    gen = await guard.screen_generation(svc.guardrails, rails, gen)
    return _json_answer(ex, gen, cid, model, headers, chat=chat, extra=extra)


def _refuse(
    svc: Services, ex: Exchange, body: ChatCompletionRequest | CompletionRequest, text: str, headers: dict[str, str],
    *, chat: bool,
) -> Response:
    """Answer a blocked input with the policy's refusal, as JSON or as a stream; no model is called."""
    cid = ex.completion_id = new_id("chatcmpl" if chat else "cmpl")
    headers = {**headers, **ex.headers}
    gen = Generation(text=text, finish_reason="content_filter", usage=Usage(0, 0))
    if body.stream:
        async def once() -> AsyncIterator[Delta]:
            yield Delta(text=text)
            yield Delta(finish_reason=gen.finish_reason, usage=gen.usage)

        return _stream_answer(svc, ex, body, once(), cid, body.model, headers, chat=chat)
    return _json_answer(ex, gen, cid, body.model, headers, chat=chat)


def _stream_answer(
    svc: Services, ex: Exchange, body: ChatCompletionRequest | CompletionRequest, deltas: AsyncIterator[Delta],
    cid: str, model: str, headers: dict[str, str], *, chat: bool, final: dict[str, Any] | None = None,
) -> Response:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    writer = ChunkWriter(cid, model, chat=chat, include_usage=include_usage, final=final)
    sse = ex.close_stream(relay(writer, ex.watch(deltas)))
    return EventStreamResponse(sse, media_type="text/event-stream", headers={**SSE_HEADERS, **headers},
                               write_timeout_s=svc.settings.server.stream_write_timeout_s)


def _json_answer(
    ex: Exchange, gen: Generation, cid: str, model: str, headers: dict[str, str], *, chat: bool,
    extra: dict[str, Any] | None = None,
) -> Response:
    ex.usage, ex.answer = gen.usage, gen.text
    payload = chat_response(cid, model, gen, extra) if chat else completion_response(cid, model, gen)
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)
