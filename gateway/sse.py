"""OpenAI's response and Server-Sent Events shapes for chat and legacy completions."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.backends.base import Delta, Generation, Usage
from gateway.errors import GatewayError

log = logging.getLogger("gateway.sse")
DONE = b"data: [DONE]\n\n"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_event(err: GatewayError) -> bytes:
    # The openai SDK raises APIError on an event whose data holds "error".
    return event(err.body())


def chat_response(cid: str, model: str, gen: Generation, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": gen.text, "refusal": None}
    if gen.tool_calls:
        message["tool_calls"] = gen.tool_calls
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": gen.finish_reason}],
        "usage": usage_dict(gen.usage),
    }
    if extra:
        body.update(extra)
    return body


def completion_response(cid: str, model: str, gen: Generation) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "text": gen.text, "logprobs": None, "finish_reason": gen.finish_reason}],
        "usage": usage_dict(gen.usage),
    }


class ChunkWriter:
    """Builds the SSE events of one streamed chat or completion answer."""

    def __init__(
        self, cid: str, model: str, chat: bool, include_usage: bool, final: dict[str, Any] | None = None
    ) -> None:
        self.final = final  # extension fields (citations) carried by the chunk with finish_reason
        self.cid = cid
        self.model = model
        self.chat = chat
        self.include_usage = include_usage
        self.created = int(time.time())
        self.obj = "chat.completion.chunk" if chat else "text_completion"

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload: dict[str, Any] = {
            "id": self.cid,
            "object": self.obj,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            payload["usage"] = None
        payload.update(extra)
        return event(payload)

    def _choice(self, text: str | None, finish: str | None, role: bool = False, tool_calls: Any = None) -> dict[str, Any]:
        if not self.chat:
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        if tool_calls:
            delta["tool_calls"] = tool_calls
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def role(self) -> bytes:
        return self._chunk([self._choice("", None, role=True)])

    def delta(self, delta: Delta) -> bytes:
        return self._chunk([self._choice(delta.text, None, tool_calls=delta.tool_calls)])

    def finish(self, reason: str, extra: dict[str, Any] | None = None) -> bytes:
        return self._chunk([self._choice(None if self.chat else "", reason)], **(extra or {}))

    def usage(self, usage: Usage) -> bytes:
        return self._chunk([], usage=usage_dict(usage))


async def relay(writer: ChunkWriter, deltas: AsyncIterator[Delta]) -> AsyncIterator[bytes]:
    """Turn backend deltas into SSE bytes; a failure mid-stream ends with an error event."""
    if writer.chat:
        yield writer.role()
    try:
        async for d in deltas:
            if d.text or d.tool_calls:
                yield writer.delta(d)
            if d.finish_reason is not None:
                yield writer.finish(d.finish_reason, writer.final)
                if writer.include_usage and d.usage is not None:
                    yield writer.usage(d.usage)
    except GatewayError as err:
        yield error_event(err)
    except Exception:  # a bug must still end the stream cleanly, and never leak a trace
        log.exception("stream %s failed", writer.cid)
        yield error_event(GatewayError("The server had an error while streaming the answer."))
    yield DONE


class EventStreamResponse(StreamingResponse):
    """A streaming response whose body stops, and is closed, as soon as the client leaves.

    Starlette's StreamingResponse cancels its body through an anyio cancel scope; under uvloop we
    saw a body keep running after its client had gone (uvicorn's `send` returns quietly then), its
    upstream connection left open and still streaming. Here the body runs in a task of its own,
    cancelled once when the client disconnects (asyncio's one-shot cancellation, so the body's
    `finally` blocks, such as writing the request log, run to the end), and is closed explicitly.

    A client that stays connected but stops reading would hold the stream (and its upstream call)
    open forever through backpressure: a write that waits longer than `write_timeout_s` abandons
    the stream, and the server closes the connection.
    """

    def __init__(self, *args: Any, write_timeout_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_timeout_s = write_timeout_s

    async def _stream_bounded(self, send: Send) -> None:
        async def bounded(message: Any) -> None:
            async with asyncio.timeout(self.write_timeout_s):
                await send(message)

        try:
            await self.stream_response(bounded)
        except TimeoutError:
            log.warning("stream abandoned: the client read nothing for %.0f s", self.write_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._stream_bounded(send))
        gone = asyncio.ensure_future(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            pump.cancel()  # nothing when the body has ended
            await asyncio.wait({pump, gone})
            closer = getattr(self.body_iterator, "aclose", None)
            if closer is not None:
                await closer()
        if not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]
