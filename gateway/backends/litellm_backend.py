"""Any litellm provider (Anthropic, Bedrock, Vertex, Azure, Ollama, ...), one attempt per call.

Retries, fallbacks and cooldowns are ours (`gateway.routing`), so litellm's own are switched off
(`num_retries=0`). litellm is imported lazily: it takes seconds to import and many deployments
never need it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway import errors
from gateway.backends.base import Delta, Generation, GenerationRequest, Usage
from gateway.backends.openai_compat import request_body


def _map_exception(exc: Exception) -> errors.GatewayError:
    import litellm

    message = errors.sanitise(str(getattr(exc, "message", exc)))
    if isinstance(exc, litellm.Timeout):
        return errors.UpstreamTimeout("upstream did not answer in time")
    if isinstance(exc, litellm.RateLimitError):
        return errors.RateLimited(f"upstream rate limited: {message}", code="upstream_rate_limited")
    if isinstance(exc, litellm.APIConnectionError):
        return errors.ServiceUnavailable(f"upstream unreachable: {message}")
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return errors.UpstreamError("upstream rejected the gateway's credentials", code="upstream_auth")
    if isinstance(exc, (litellm.BadRequestError, litellm.UnprocessableEntityError, litellm.NotFoundError)):
        return errors.UpstreamClientError(f"upstream rejected the request: {message}")
    return errors.UpstreamError(f"upstream error: {message}")


class LitellmBackend:
    def __init__(
        self,
        model: str,
        api_base: str | None,
        api_key: str | None,
        timeout_s: float,
        params: dict[str, Any],
    ) -> None:
        self._model = model
        self._kwargs: dict[str, Any] = {"num_retries": 0, "timeout": timeout_s, **params}
        if api_base:
            self._kwargs["api_base"] = api_base
        if api_key:
            self._kwargs["api_key"] = api_key

    async def complete(self, request: GenerationRequest) -> Generation:
        import litellm

        body = request_body(request, self._model, stream=False)
        try:
            if request.messages is not None:
                resp: Any = await litellm.acompletion(**body, **self._kwargs)
                choice = resp.choices[0]
                text = choice.message.content or ""
                tool_calls = choice.message.tool_calls
                calls = [c.model_dump() for c in tool_calls] if tool_calls else None
            else:
                resp = await litellm.atext_completion(**body, **self._kwargs)
                choice = resp.choices[0]
                text, calls = choice.text or "", None
        except errors.GatewayError:
            raise
        except Exception as exc:  # litellm raises its own tree; map it once
            raise _map_exception(exc) from None
        usage = resp.usage
        return Generation(
            text,
            choice.finish_reason or "stop",
            Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0),
            calls,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        import litellm

        body = request_body(request, self._model, stream=True)
        finish: Any = None
        usage: Usage | None = None
        try:
            if request.messages is None:
                raise errors.UnsupportedParameter(
                    "streaming legacy completions is not supported for this deployment", param="stream"
                )
            resp = await litellm.acompletion(**body, **self._kwargs)
            async for chunk in resp:
                raw_usage = getattr(chunk, "usage", None)
                if raw_usage:
                    usage = Usage(raw_usage.prompt_tokens or 0, raw_usage.completion_tokens or 0)
                for choice in chunk.choices:
                    finish = choice.finish_reason or finish
                    text = choice.delta.content or ""
                    calls = choice.delta.tool_calls
                    if text or calls:
                        yield Delta(text=text, tool_calls=[c.model_dump() for c in calls] if calls else None)
        except errors.GatewayError:
            raise
        except Exception as exc:
            raise _map_exception(exc) from None
        if finish is None:
            raise errors.UpstreamError("upstream stream ended before the answer was finished")
        yield Delta(finish_reason=finish, usage=usage or Usage(0, 0))

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
