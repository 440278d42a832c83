"""Chat/completions backend for Triton Inference Server: TensorRT-LLM ensembles and our local model.

Both speak the TensorRT-LLM "ensemble" tensor interface:

    text_input BYTES, max_tokens INT32, temperature FP32, top_p FP32, stop_words BYTES[-1],
    random_seed UINT64, stream BOOL  ->  text_output BYTES

Our local server (`gateway.localmodel.server`) adds the outputs `finish_reason`, `prompt_tokens`
and `completion_tokens`. This client uses them when present and otherwise (a real TRT-LLM
deployment) counts tokens with the model's tokenizer and infers `finish_reason` ("length" when the
completion used all of `max_tokens`). Seeds are sent as TRT-LLM's `random_seed`, which our server
also accepts.

Protocols:
- "grpc" (default): tritonclient's asyncio client and Triton's bidirectional streaming RPC, for
  streaming and non-streaming calls alike (decoupled models such as ours and TRT-LLM's streaming
  ensembles do not answer the unary `ModelInfer`).
- "http": KServe's generate extension, `POST /v2/models/<m>/generate` (stream=false) and
  `/generate_stream` (server-sent events), with httpx.

The chat template is applied here (`tokenizer.apply_chat_template(..., add_generation_prompt=True)`),
so Triton receives plain text; legacy completions send `prompt` as is.

Clients are created lazily, one per event loop (gRPC asyncio channels belong to the loop that made
them), and closed by `aclose()`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal

import numpy as np

from gateway import errors
from gateway.backends.base import Delta, FinishReason, Generation, GenerationRequest, Usage
from gateway.backends.triton_wire import (
    UNSUPPORTED,
    chatml,
    first_value,
    map_server_error,
    normalise_messages,
    text_value,
)

DEFAULT_MAX_TOKENS = 512

async def _with_deadline(it: AsyncIterator[Any], deadline: float) -> AsyncIterator[Any]:
    """Iterate `it`, failing with UpstreamTimeout once the event loop's clock passes `deadline`."""
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                item = await it.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise errors.UpstreamTimeout("the model server did not answer in time") from None
        yield item


def _channel_args() -> list[tuple[str, int | bool]]:
    """tritonclient's defaults plus a short reconnect backoff. gRPC's own backs off to 120 s, so
    after Triton restarts (the supervisor's watchdog) the channel would stay down for minutes."""
    from tritonclient.grpc import KeepAliveOptions
    from tritonclient.grpc.aio import MAX_GRPC_MESSAGE_SIZE

    keepalive = KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


class _Piece:
    """One response of the server, protocol-neutral."""

    __slots__ = ("text", "finish_reason", "prompt_tokens", "completion_tokens", "final")

    def __init__(self, text: str, finish_reason: str | None, prompt_tokens: Any, completion_tokens: Any, final: bool):
        self.text = text
        self.finish_reason = finish_reason or None
        self.prompt_tokens = int(prompt_tokens) if prompt_tokens is not None else None
        self.completion_tokens = int(completion_tokens) if completion_tokens is not None else None
        self.final = final


# ------------------------------------------------------------------------------------ the backend
class TritonChatBackend:
    """One Triton model (TensorRT-LLM ensemble or `gateway.localmodel.server`) as a ChatBackend."""

    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        protocol: Literal["grpc", "http"] = "grpc",
        tokenizer: Any = None,
        timeout_s: float = 60.0,
        context_length: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if protocol not in ("grpc", "http"):
            raise ValueError("protocol must be 'grpc' or 'http'")
        url = url.strip()
        for prefix in ("grpc://", "http://", "https://"):
            if url.startswith(prefix):
                if prefix == "https://":
                    raise ValueError("TLS endpoints are not supported; give host:port")
                url = url[len(prefix) :]
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.protocol = protocol
        self.tokenizer = tokenizer
        self.timeout_s = float(timeout_s)
        self.context_length = context_length
        self.default_max_tokens = default_max_tokens
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ prompt
    def render_prompt(self, request: GenerationRequest) -> str:
        for name in UNSUPPORTED:
            value = request.extra.get(name)
            if value is None or (name == "tool_choice" and value == "none"):
                continue
            if name == "response_format" and isinstance(value, dict) and value.get("type") == "text":
                continue
            raise errors.UnsupportedParameter(f"{name} is not supported by the local model", param=name)
        if (request.extra.get("n") or 1) != 1:
            raise errors.UnsupportedParameter("n > 1 is not supported by this model", param="n")
        if request.messages is not None:
            messages = normalise_messages(request.messages)
            if self.tokenizer is not None:
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return chatml(messages)
        if request.prompt is None:
            raise errors.InvalidRequest("either messages or prompt is required")
        return request.prompt

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None or not text:
            return 0
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return len(backend.encode(text, add_special_tokens=False).ids)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _check_length(self, prompt: str) -> int | None:
        """Prompt tokens when counted. Counting is skipped when the prompt cannot be too long:
        byte-level tokenizers never make more tokens than UTF-8 bytes."""
        if self.context_length is None or self.tokenizer is None:
            return None
        if len(prompt.encode("utf-8")) < self.context_length:
            return None
        n = self.count_tokens(prompt)
        if n >= self.context_length:
            raise errors.InvalidRequest(
                f"the prompt has {n} tokens; this model's context is {self.context_length} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        return n

    def _params(self, request: GenerationRequest, prompt: str, stream: bool) -> dict[str, Any]:
        max_tokens = request.max_tokens if request.max_tokens is not None else self.default_max_tokens
        p: dict[str, Any] = {"text_input": prompt, "max_tokens": int(max_tokens), "stream": stream}
        if request.temperature is not None:
            p["temperature"] = float(request.temperature)
        if request.top_p is not None:
            p["top_p"] = float(request.top_p)
        if request.stop:
            p["stop_words"] = [s for s in request.stop if s]
        if request.seed is not None:
            p["random_seed"] = int(request.seed) % (1 << 64)
        return p

    # ------------------------------------------------------------------ public API
    async def complete(self, request: GenerationRequest) -> Generation:
        parts: list[str] = []
        final: Delta | None = None
        async for d in self._run(request, stream=False):
            if d.finish_reason is not None:
                final = d
            else:
                parts.append(d.text)
        assert final is not None and final.usage is not None
        return Generation("".join(parts), final.finish_reason or "stop", final.usage)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        async for d in self._run(request, stream=True):
            yield d

    async def ready(self) -> bool:
        try:
            if self.protocol == "grpc":
                client = self._grpc()
                return bool(await asyncio.wait_for(client.is_model_ready(self.model_name), min(5.0, self.timeout_s)))
            resp = await self._http().get(f"/v2/models/{self.model_name}/ready", timeout=min(5.0, self.timeout_s))
            return resp.status_code == 200
        except Exception:
            return False

    async def aclose(self) -> None:
        clients = list(self._clients.items())
        self._clients.clear()
        current = asyncio.get_running_loop()
        for loop, client in clients:
            if loop is current:
                try:
                    await client.close() if self.protocol == "grpc" else await client.aclose()
                except Exception:  # closing is best effort
                    pass

    # ------------------------------------------------------------------ generation
    async def _run(self, request: GenerationRequest, stream: bool) -> AsyncIterator[Delta]:
        prompt = self.render_prompt(request)
        counted = self._check_length(prompt)
        params = self._params(request, prompt, stream)
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        source: AsyncGenerator[_Piece, None] = (
            self._grpc_pieces(params) if self.protocol == "grpc" else self._http_pieces(params, stream)
        )
        pieces: list[str] = []
        last: _Piece | None = None
        try:
            async for piece in _with_deadline(source, deadline):
                if piece.text:
                    pieces.append(piece.text)
                    yield Delta(text=piece.text)
                if piece.finish_reason is not None or (piece.final and last is None):
                    last = piece
        finally:
            await source.aclose()
        if last is None and not pieces:
            raise errors.UpstreamError("the model server ended the stream without an answer")
        text = "".join(pieces)
        prompt_tokens = last.prompt_tokens if last is not None else None
        completion_tokens = last.completion_tokens if last is not None else None
        if prompt_tokens is None:
            prompt_tokens = counted if counted is not None else self.count_tokens(prompt)
        if completion_tokens is None:
            completion_tokens = self.count_tokens(text)
        finish: FinishReason
        if last is not None and last.finish_reason in ("stop", "length"):
            finish = last.finish_reason  # type: ignore[assignment]
        else:
            finish = "length" if completion_tokens >= params["max_tokens"] else "stop"
        yield Delta(finish_reason=finish, usage=Usage(prompt_tokens, completion_tokens))

    # ------------------------------------------------------------------ gRPC
    def _grpc(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import tritonclient.grpc.aio as grpcclient

            client = grpcclient.InferenceServerClient(self.url, channel_args=_channel_args())
            self._clients[loop] = client
        return client

    @staticmethod
    def _grpc_inputs(params: dict[str, Any]) -> list[Any]:
        import tritonclient.grpc.aio as grpcclient

        def make(name: str, arr: np.ndarray, dtype: str) -> Any:
            t = grpcclient.InferInput(name, list(arr.shape), dtype)
            t.set_data_from_numpy(arr)
            return t

        inputs = [
            make("text_input", np.array([[params["text_input"].encode("utf-8")]], dtype=object), "BYTES"),
            make("max_tokens", np.array([[params["max_tokens"]]], dtype=np.int32), "INT32"),
            make("stream", np.array([[params["stream"]]], dtype=bool), "BOOL"),
        ]
        if "temperature" in params:
            inputs.append(make("temperature", np.array([[params["temperature"]]], dtype=np.float32), "FP32"))
        if "top_p" in params:
            inputs.append(make("top_p", np.array([[params["top_p"]]], dtype=np.float32), "FP32"))
        if params.get("stop_words"):
            words = np.array([[w.encode("utf-8") for w in params["stop_words"]]], dtype=object)
            inputs.append(make("stop_words", words, "BYTES"))
        if "random_seed" in params:
            inputs.append(make("random_seed", np.array([[params["random_seed"]]], dtype=np.uint64), "UINT64"))
        return inputs

    async def _grpc_pieces(self, params: dict[str, Any]) -> AsyncGenerator[_Piece, None]:
        import grpc
        from tritonclient.utils import InferenceServerException

        client = self._grpc()
        inputs = self._grpc_inputs(params)

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield {"model_name": self.model_name, "inputs": inputs}

        call = None
        try:
            call = client.stream_infer(requests(), stream_timeout=self.timeout_s)
            async for result, error in call:
                if error is not None:
                    raise map_server_error(str(error.message() or error), error.status())
                response = result.get_response()
                final_param = response.parameters.get("triton_final_response")
                final = bool(final_param.bool_param) if final_param is not None else False
                names = {o.name for o in response.outputs}
                yield _Piece(
                    text_value(first_value(result.as_numpy("text_output"))) if "text_output" in names else "",
                    text_value(first_value(result.as_numpy("finish_reason"))) if "finish_reason" in names else None,
                    first_value(result.as_numpy("prompt_tokens")) if "prompt_tokens" in names else None,
                    first_value(result.as_numpy("completion_tokens")) if "completion_tokens" in names else None,
                    final,
                )
        except grpc.aio.AioRpcError as exc:
            raise map_server_error(exc.details() or "", str(exc.code())) from None
        except InferenceServerException as exc:
            raise map_server_error(str(exc.message() or exc), exc.status()) from None
        finally:
            if call is not None:
                call.cancel()  # no-op once the server closed the stream

    # ------------------------------------------------------------------ HTTP
    def _http(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import httpx

            client = httpx.AsyncClient(
                base_url=f"http://{self.url}",
                timeout=httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)),
            )
            self._clients[loop] = client
        return client

    async def _http_pieces(self, params: dict[str, Any], stream: bool) -> AsyncGenerator[_Piece, None]:
        import httpx
        import orjson

        client = self._http()
        body = orjson.dumps(params)
        path = f"/v2/models/{self.model_name}/{'generate_stream' if stream else 'generate'}"
        headers = {"content-type": "application/json"}
        try:
            async with client.stream("POST", path, content=body, headers=headers) as resp:
                if not stream:
                    raw = await resp.aread()
                    yield self._http_piece(raw, resp.status_code, final=True)
                    return
                if resp.status_code >= 400 and not resp.headers.get("content-type", "").startswith("text/event-stream"):
                    raise self._http_error(await resp.aread(), resp.status_code)
                async for line in resp.aiter_lines():
                    if line.startswith("data:"):
                        yield self._http_piece(line[5:].strip().encode(), resp.status_code, final=False)
        except httpx.TimeoutException:
            raise errors.UpstreamTimeout("the model server did not answer in time") from None
        except httpx.TransportError as exc:
            raise errors.ServiceUnavailable(f"the model server is unreachable: {type(exc).__name__}") from None

    @staticmethod
    def _http_error(raw: bytes, status: int) -> errors.GatewayError:
        import orjson

        try:
            message = str(orjson.loads(raw).get("error") or raw.decode(errors="replace"))
        except (orjson.JSONDecodeError, AttributeError):
            message = raw.decode(errors="replace")
        return map_server_error(message, "UNAVAILABLE" if status in (502, 503) else None)

    def _http_piece(self, raw: bytes, status: int, final: bool) -> _Piece:
        import orjson

        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.UpstreamError("the model server sent a malformed response") from None
        if not isinstance(data, dict):
            raise errors.UpstreamError("the model server sent a malformed response")
        if "error" in data or status >= 400:
            raise self._http_error(raw, status)
        return _Piece(
            text_value(first_value(data.get("text_output"))),
            text_value(first_value(data.get("finish_reason"))) or None,
            first_value(data.get("prompt_tokens")),
            first_value(data.get("completion_tokens")),
            final,
        )
