"""Direct client for OpenAI-compatible providers (`openai/...` deployments on the fast path).

litellm would translate OpenAI's format into OpenAI's format; calling the provider with one pooled
HTTP client skips that work. The client is aiohttp, injected by the app factory: measured here,
httpx's AnyIO layers cost about 1 ms of CPU per proxied request, aiohttp a fraction of that
(BENCHMARKS.md).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from gateway import errors
from gateway.backends.base import Delta, Generation, GenerationRequest, Usage

_PASSTHROUGH_SKIP = {"stream", "stream_options", "model", "messages", "prompt"}


def request_body(request: GenerationRequest, upstream_model: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": upstream_model}
    if request.messages is not None:
        body["messages"] = request.messages
    else:
        body["prompt"] = request.prompt
    for key, value in (
        ("max_tokens", request.max_tokens),
        ("temperature", request.temperature),
        ("top_p", request.top_p),
        ("seed", request.seed),
        ("user", request.user),
    ):
        if value is not None:
            body[key] = value
    if request.stop:
        body["stop"] = list(request.stop)
    for key, value in request.extra.items():
        if key not in _PASSTHROUGH_SKIP and value is not None:
            body[key] = value
    if stream:
        body["stream"] = True
        # Always ask for usage so budgets and logs count streamed tokens exactly.
        body["stream_options"] = {"include_usage": True}
    return body


def raise_for_upstream(status: int, text: str) -> None:
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text
    message = errors.sanitise(str(message))
    if status == 429:
        raise errors.RateLimited(f"upstream rate limited: {message}", code="upstream_rate_limited")
    if status in (401, 403):
        raise errors.UpstreamError("upstream rejected the gateway's credentials", code="upstream_auth")
    if 400 <= status < 500:
        raise errors.UpstreamClientError(f"upstream rejected the request: {message}")
    raise errors.UpstreamError(f"upstream error {status}: {message}")


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


class OpenAICompatBackend:
    def __init__(
        self,
        client: aiohttp.ClientSession,
        api_base: str,
        upstream_model: str,
        api_key: str | None,
        counter: Any = None,
    ) -> None:
        self._client = client
        self._base = api_base.rstrip("/")
        self._model = upstream_model
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        # Counts tokens when a provider omits usage (tiktoken for OpenAI-family models).
        self._counter = counter

    def _url(self, request: GenerationRequest) -> str:
        return f"{self._base}/chat/completions" if request.messages is not None else f"{self._base}/completions"

    async def complete(self, request: GenerationRequest) -> Generation:
        body = orjson.dumps(request_body(request, self._model, stream=False))
        try:
            async with self._client.post(self._url(request), data=body, headers=self._headers) as resp:
                content = await resp.read()
                status = resp.status
        except TimeoutError:
            raise errors.UpstreamTimeout("upstream did not answer in time") from None
        except aiohttp.ClientConnectionError as exc:
            raise errors.ServiceUnavailable(f"upstream unreachable: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise errors.UpstreamError(f"upstream failed: {type(exc).__name__}") from None
        if status >= 400:
            raise_for_upstream(status, content.decode(errors="replace"))
        try:
            data = orjson.loads(content)
            choice = data["choices"][0]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            raise errors.UpstreamError("upstream returned a malformed response") from None
        if request.messages is not None:
            message = choice.get("message") or {}
            text = message.get("content") or ""
            tool_calls = message.get("tool_calls")
        else:
            text, tool_calls = choice.get("text") or "", None
        usage = _usage(data.get("usage")) or self._count(request, text)
        return Generation(text, choice.get("finish_reason") or "stop", usage, tool_calls)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        body = orjson.dumps(request_body(request, self._model, stream=True))
        finish: Any = None
        usage: Usage | None = None
        pieces: list[str] = []
        try:
            async with self._client.post(self._url(request), data=body, headers=self._headers) as resp:
                if resp.status >= 400:
                    raise_for_upstream(resp.status, (await resp.read()).decode(errors="replace"))
                async for raw in resp.content:
                    line = raw.decode(errors="replace").strip()
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        chunk = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        raise errors.UpstreamError("upstream sent a malformed stream event") from None
                    if "error" in chunk:
                        raise errors.UpstreamError(
                            f"upstream stream error: {errors.sanitise(str(chunk['error']))}"
                        )
                    usage = _usage(chunk.get("usage")) or usage
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        text = delta.get("content") or choice.get("text") or ""
                        finish = choice.get("finish_reason") or finish
                        if text or delta.get("tool_calls"):
                            pieces.append(text)
                            yield Delta(text=text, tool_calls=delta.get("tool_calls"))
        except TimeoutError:
            raise errors.UpstreamTimeout("upstream did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise errors.UpstreamError(f"upstream stream broke: {type(exc).__name__}") from None
        if finish is None:
            raise errors.UpstreamError("upstream stream ended before the answer was finished")
        yield Delta(finish_reason=finish, usage=usage or self._count(request, "".join(pieces)))

    def _count(self, request: GenerationRequest, text: str) -> Usage:
        if self._counter is None:
            return Usage(0, 0)
        return self._counter(request, text)

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
