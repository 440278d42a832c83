"""A throw-away OpenAI-compatible server for a candidate model, so the evals runner can score it
before anything serves it: `/v1/models` and non-streaming `/v1/chat/completions` on loopback,
generating with transformers (greedy at temperature 0, the evals default)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


class CandidateServer:
    """`with CandidateServer(folder, name) as base_url:` serves the folder's model as `name`."""

    def __init__(self, folder: Path, name: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True).eval()
        self._lock = threading.Lock()  # one generation at a time: the CPU is the bottleneck anyway
        self.port = _free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = [{"role": m.get("role", "user"), "content": _text(m.get("content"))} for m in body.get("messages", [])]
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        temperature = float(body.get("temperature") or 0.0)
        max_new = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": temperature > 0,
                                  "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=float(body.get("top_p") or 1.0))
            if body.get("seed") is not None:
                torch.manual_seed(int(body["seed"]))
        with self._lock, torch.no_grad():
            out = self.model.generate(**ids, **kwargs)
        new = out[0][ids["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_new else "stop"
        stops = body.get("stop") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop and stop in text:
                text, finish = text[: text.index(stop)], "stop"
        prompt_tokens = int(ids["input_ids"].shape[1])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(new),
                      "total_tokens": prompt_tokens + len(new)},
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": self.name, "object": "model", "created": 0, "owned_by": "llmops"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            import anyio

            body = await request.json()
            return await anyio.to_thread.run_sync(self.complete, body)

        return app

    def __enter__(self) -> str:
        import uvicorn

        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="candidate-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the candidate model server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
