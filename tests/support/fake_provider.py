"""A fake *external* OpenAI-compatible provider for failure injection and overhead benchmarks.

Behaviour is picked by the requested model name (TensorZero's trick), so one server serves every
scenario at once:

    anything else       answers at once ("Hello from the fake provider.")
    error-500           500 every time              bad-request   400 every time
    flaky-<N>-<tag>     500 for the first N calls of that model name, then answers
    hang                never answers               slow-<ms>     answers after <ms> milliseconds
    malformed           200 with a body that is not JSON
    cut                 streams two chunks, then drops the connection (no finish, no [DONE])
    stall               streams one chunk, then never sends another
    echo                answers with the last user message (to see what the gateway forwarded)
    echo-system         answers with the system message (a model that leaks its prompt)
    leak                answers ~200 characters of harmless text, then a cloud access key
    endless             streams chunk after chunk until the client leaves (or a million chunks);
                        /stats counts them ("endless:chunks") and the client leaving ("endless:closed")

GET /stats returns calls per model name; GET /last the last request body; POST /reset clears.
Pure ASGI on uvicorn: the upstream must be far faster than the gateway it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from typing import Any

import orjson

ANSWER = "Hello from the fake provider."
LEAK = ("Here is a long and perfectly harmless introduction about configuring cloud storage buckets, "
        "written so that several streaming windows pass the output rails before anything sensitive "
        "appears. Now the secret part: aws_access_key_id = AKIAZ3MPLE7EXAMPLEQ2 and that is all.")
ENDLESS_CHUNKS = 1_000_000
calls: collections.Counter[str] = collections.Counter()
last_body: dict[str, Any] = {}


def _answer(model: str, body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{"role": "user", "content": body.get("prompt", "")}]
    if model == "echo":
        return str(next((m["content"] for m in reversed(messages) if m.get("role") == "user"), ""))
    if model == "echo-system":
        return str(next((m["content"] for m in messages if m.get("role") == "system"), ""))
    if model == "leak":
        return LEAK
    return ANSWER


def _completion(model: str, chat: bool, answer: str) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": answer}
    else:
        choice["text"] = answer
    return {
        "id": "fake-1",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13},
    }


def _chunk(model: str, content: str | None, finish: str | None, usage: bool = False) -> bytes:
    payload: dict[str, Any] = {
        "id": "fake-1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [] if usage else [{"index": 0, "delta": {} if content is None else {"content": content}, "finish_reason": finish}],
    }
    if usage:
        payload["usage"] = {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _send(send: Any, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/stats":
        await _send(send, 200, orjson.dumps(dict(calls)))
        return
    if path == "/last":
        await _send(send, 200, orjson.dumps(last_body))
        return
    if path == "/reset":
        calls.clear()
        await _send(send, 200, b"{}")
        return
    if not path.endswith(("/chat/completions", "/completions")):
        await _send(send, 404, b'{"error": {"message": "not found"}}')
        return
    body = orjson.loads(await _read(receive))
    model = str(body.get("model", ""))
    calls[model] += 1
    last_body.clear()
    last_body.update(body)
    chat = path.endswith("/chat/completions")
    if model == "error-500" or (model.startswith("flaky-") and calls[model] <= int(model.split("-")[1])):
        await _send(send, 500, b'{"error": {"message": "injected failure", "type": "server_error"}}')
        return
    if model == "bad-request":
        await _send(send, 400, b'{"error": {"message": "injected bad request", "type": "invalid_request_error"}}')
        return
    if model == "hang":
        await asyncio.sleep(3600)
    if model.startswith("slow-"):
        await asyncio.sleep(int(model.split("-")[1]) / 1000)
    if model == "malformed":
        await _send(send, 200, b"<html>this is not json")
        return
    if not body.get("stream"):
        await _send(send, 200, orjson.dumps(_completion(model, chat, _answer(model, body))))
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    words = _answer(model, body).split(" ")
    if model == "cut":
        for word in words[:2]:
            await send({"type": "http.response.body", "body": _chunk(model, word + " ", None), "more_body": True})
        await asyncio.sleep(0.2)  # let the first chunks reach the client before the drop
        raise ConnectionResetError("injected: connection dropped mid-stream")
    if model == "endless":
        await _endless(model, receive, send)
        return
    if model == "stall":
        await send({"type": "http.response.body", "body": _chunk(model, words[0] + " ", None), "more_body": True})
        await asyncio.sleep(3600)
    events = [_chunk(model, w if i == len(words) - 1 else w + " ", None) for i, w in enumerate(words)]
    events.append(_chunk(model, None, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(_chunk(model, None, None, usage=True))
    events.append(b"data: [DONE]\n\n")
    await send({"type": "http.response.body", "body": b"".join(events), "more_body": False})


async def _endless(model: str, receive: Any, send: Any) -> None:
    """One chunk per send, so a reader that stops pushes back here (uvicorn pauses `send`)."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    chunk = _chunk(model, "endless " * 16, None)
    for _ in range(ENDLESS_CHUNKS):
        await asyncio.sleep(0)  # uvicorn's send returns at once, quietly, when the client has gone: let watch() run
        if gone.is_set():
            calls[f"{model}:closed"] += 1
            return
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        calls[f"{model}:chunks"] += 1
    watcher.cancel()
    await send({"type": "http.response.body", "body": _chunk(model, None, "stop") + b"data: [DONE]\n\n"})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9900)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
