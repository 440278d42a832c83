"""The generation request path, top to bottom.

    authenticate (router dependency) → model access → build the request
    → model call (routing: retries, fallbacks) → respond (JSON or SSE)

Later steps (limits, prompt resolution, input rails, retrieval, output rails, logging) slot in here
in that order, each one call to its own package.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response, StreamingResponse

from gateway import errors
from gateway.auth import Principal, check_model_access
from gateway.backends.base import GenerationRequest
from gateway.protocol import ChatCompletionRequest, CompletionRequest
from gateway.services import Services
from gateway.sse import ChunkWriter, chat_response, completion_response, new_id, relay

# Parameters we map ourselves; everything else the client sent is passed through untouched.
_MAPPED = {
    "messages", "model", "prompt", "max_tokens", "max_completion_tokens", "temperature", "top_p",
    "stop", "seed", "user", "stream", "stream_options", "n",
}
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


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


def _passthrough(body: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    dumped = body.model_dump(exclude_none=True, exclude=_MAPPED)
    return {k: v for k, v in dumped.items() if v is not None}


def _json(payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json", headers=headers)


async def chat(svc: Services, principal: Principal, body: ChatCompletionRequest) -> Response:
    check_model_access(principal, body.model)
    svc.router.kind_check(body.model, embedding=False)
    max_tokens = body.max_completion_tokens or body.max_tokens
    _check_common(svc, body, max_tokens)
    if len(body.messages) > svc.settings.server.max_messages:
        raise errors.InvalidRequest(
            f"At most {svc.settings.server.max_messages} messages per request.", param="messages"
        )
    request = GenerationRequest(
        model=body.model,
        messages=[m.model_dump(exclude_none=True) for m in body.messages],
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=_stop(body.stop),
        seed=body.seed,
        user=body.user,
        extra=_passthrough(body),
    )
    return await _generate(svc, body, request, chat=True)


async def completion(svc: Services, principal: Principal, body: CompletionRequest) -> Response:
    check_model_access(principal, body.model)
    svc.router.kind_check(body.model, embedding=False)
    _check_common(svc, body, body.max_tokens)
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise errors.UnsupportedParameter("Send exactly one prompt string per request.", param="prompt")
        prompt = prompt[0]
    request = GenerationRequest(
        model=body.model,
        prompt=prompt,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=_stop(body.stop),
        seed=body.seed,
        user=body.user,
        extra=_passthrough(body),
    )
    return await _generate(svc, body, request, chat=False)


async def _generate(
    svc: Services, body: ChatCompletionRequest | CompletionRequest, request: GenerationRequest, *, chat: bool
) -> Response:
    cid = new_id("chatcmpl" if chat else "cmpl")
    if body.stream:
        deltas, model = await svc.router.stream(request)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        writer = ChunkWriter(cid, model, chat=chat, include_usage=include_usage)
        return StreamingResponse(relay(writer, deltas), media_type="text/event-stream", headers=SSE_HEADERS)
    gen, model = await svc.router.complete(request)
    return _json(chat_response(cid, model, gen) if chat else completion_response(cid, model, gen))
