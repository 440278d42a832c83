"""A fake of the gateway's *feature* endpoints (rails, retrieval, prompts) for the eval runner's tests.

A real HTTP server (pure ASGI on uvicorn, started as a subprocess) that answers like the gateway
will once guardrails, RAG and the prompt registry land, so every target kind is exercised over HTTP:

    POST /v1/chat/completions
        key must be "sk-fake" (else 401); model "unknown" → 404 model_not_found
        a message containing a block phrase → 400 content_policy_violation
        model "echo" answers the last user message; "upper" the same upper-cased; "judge" → "Score: 4";
        "leaky" → finish_reason content_filter; "json" → '{"answer": "<last user message>"}'
        {"prompt": {name: "qa", label|version, variables}} → header x-prompt-version;
            odd versions answer variables.answer, even versions "I don't know"; labels production=1, staging=2
        {"retrieval": {collection, top_k}} → answer from the best document, `citations` [{id, source, score}]
    POST /v1/guardrails/check {messages} → {allowed, action, messages, verdicts}
    POST /v1/rag/search {collection, query, top_k} → {data: [{id, text, score, source, metadata}]}
    GET /v1/models, GET /health, GET /stats (calls per model/endpoint), POST /reset
"""

from __future__ import annotations

import argparse
import collections
import math
import re
import time
from pathlib import Path
from typing import Any

import orjson

KEY = "sk-fake"
BLOCK = re.compile(r"(ignore|disregard|forget) (all|every|the)? ?(previous|prior|earlier|instructions|question above)"
                   r"|system prompt, word|evilbot|no safety guidelines|api keys you were|admin notice"
                   r"|new instructions|olvida todas|obey only me|BLOCKME", re.I)
LABELS = {"production": 1, "staging": 2}
calls: collections.Counter[str] = collections.Counter()
DOCS: dict[str, dict[str, Any]] = {}
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"what", "which", "does", "with", "that", "this", "when", "from", "have", "they", "their", "there",
         "about", "into", "your", "then", "than", "each", "were", "been", "will", "also", "before", "again"}


def load_docs(folder: Path) -> None:
    for path in sorted(folder.glob("*.md")):
        text = path.read_text()
        DOCS[path.stem] = {"id": path.stem, "text": text, "source": f"docs/{path.name}", "metadata": {}}


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 4 and w not in _STOP}


def search(query: str, top_k: int) -> list[dict[str, Any]]:
    q = _words(query)
    scored = []
    for doc in DOCS.values():
        words = _words(doc["text"])
        score = len(q & words) / math.sqrt(len(words) or 1)
        scored.append({**doc, "score": round(score, 4)})
    scored.sort(key=lambda d: (-d["score"], d["id"]))
    return scored[:top_k]


def _last_user(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            return content if isinstance(content, str) else ""
    return ""


async def _send(send: Any, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps(payload)
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _chat(body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    model = str(body.get("model", "default"))
    messages = body.get("messages") or []
    calls[model] += 1
    if model == "unknown":
        return 404, _error(f"The model '{model}' does not exist", "invalid_request_error", "model_not_found"), {}
    text_in = " ".join(str(m.get("content", "")) for m in messages if isinstance(m.get("content"), str))
    headers: dict[str, str] = {}
    prompt = body.get("prompt")
    if isinstance(prompt, dict):
        if prompt.get("name") != "qa":
            return 404, _error(f"prompt {prompt.get('name')!r} not found", "not_found_error", "not_found"), {}
        version = prompt.get("version") or LABELS.get(str(prompt.get("label")))
        if version is None:
            return 404, _error("label not found", "not_found_error", "not_found"), {}
        calls[f"prompt-v{version}"] += 1
        headers["x-prompt-version"] = str(version)
        variables = prompt.get("variables") or {}
        text_in += " " + " ".join(str(v) for v in variables.values())
    if BLOCK.search(text_in):
        return 400, _error("blocked by the input rails", "invalid_request_error", "content_policy_violation"), headers
    finish = "stop"
    citations: list[dict[str, Any]] = []
    last = _last_user(messages)
    if isinstance(prompt, dict):
        version = int(headers["x-prompt-version"])
        answer = str((prompt.get("variables") or {}).get("answer", "")) if version % 2 else "I don't know"
        answer = f"v{version}: {answer}"
    elif isinstance(body.get("retrieval"), dict):
        hits = search(last, int(body["retrieval"].get("top_k", 3)))
        citations = [{"id": h["id"], "source": h["source"], "score": h["score"]} for h in hits]
        answer = hits[0]["text"].splitlines()[-1] if hits else "no documents"
    elif model == "echo":
        answer = last
    elif model == "upper":
        answer = last.upper()
    elif model == "judge":
        answer = "Score: 4"
    elif model == "json":
        answer = orjson.dumps({"answer": last}).decode()
    elif model == "leaky":
        answer, finish = "", "content_filter"
    else:
        answer = "Hello from the fake gateway."
    usage = {"prompt_tokens": len(text_in.split()), "completion_tokens": len(answer.split())}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": finish}],
        "usage": usage,
    }
    if citations:
        payload["citations"] = citations
    return 200, payload, headers


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if path == "/health":
        await _send(send, 200, {"status": "ok"})
        return
    if path == "/stats":
        await _send(send, 200, dict(calls))
        return
    if path == "/reset":
        calls.clear()
        await _send(send, 200, {})
        return
    headers = dict(scope["headers"])
    if headers.get(b"authorization", b"").decode() != f"Bearer {KEY}":
        await _send(send, 401, _error("Incorrect API key provided.", "authentication_error", "invalid_api_key"))
        return
    if path == "/v1/models" and method == "GET":
        await _send(send, 200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})
        return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    body = orjson.loads(raw or b"{}")
    if path == "/v1/chat/completions":
        status, payload, hdrs = _chat(body)
        await _send(send, status, payload, hdrs)
    elif path == "/v1/guardrails/check":
        calls["guardrails-check"] += 1
        text = " ".join(str(m.get("content", "")) for m in body.get("messages") or [])
        blocked = bool(BLOCK.search(text))
        verdicts = [{"rail": "injection", "allowed": not blocked, "score": 0.99 if blocked else 0.01}]
        await _send(send, 200, {"allowed": not blocked, "action": "block" if blocked else "allow",
                                "messages": body.get("messages") or [], "verdicts": verdicts})
    elif path == "/v1/rag/search":
        calls["rag-search"] += 1
        if body.get("collection") != "evals-docs":
            await _send(send, 404, _error("collection not found", "not_found_error", "not_found"))
            return
        hits = search(str(body.get("query", "")), int(body.get("top_k", 5)))
        await _send(send, 200, {"object": "list", "data": hits})
    else:
        await _send(send, 404, _error("not found", "not_found_error", "not_found"))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--docs", type=Path, required=True)
    args = parser.parse_args()
    load_docs(args.docs)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
