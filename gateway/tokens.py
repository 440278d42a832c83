"""Token counting: tiktoken for OpenAI-family models (offline), the model's own tokenizer otherwise."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

from gateway.backends.base import GenerationRequest, Usage

Counter = Callable[[GenerationRequest, str], Usage]


def use_offline_tiktoken() -> None:
    """Point tiktoken at the BPE files that litellm ships; tiktoken would otherwise download them.

    Must run before the first `tiktoken.get_encoding`. Found without importing litellm (slow).
    """
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    if folder.is_dir():
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(folder))


@functools.lru_cache(maxsize=16)
def _encoding(model: str):  # type: ignore[no-untyped-def]
    import tiktoken

    name = model.split("/", 1)[-1]
    try:
        return tiktoken.encoding_for_model(name)
    except KeyError:
        return tiktoken.get_encoding("o200k_base" if name.startswith(("gpt-4o", "o1", "o3", "o4", "gpt-5")) else "cl100k_base")


def tiktoken_counter(model: str) -> Counter:
    """Count like OpenAI does for chat: ~3 tokens of framing per message plus 3 for the reply."""

    def count(request: GenerationRequest, completion: str) -> Usage:
        enc = _encoding(model)
        if request.messages is not None:
            prompt = 3
            for message in request.messages:
                prompt += 3 + len(enc.encode(str(message.get("content") or ""), disallowed_special=()))
                if message.get("name"):
                    prompt += 1
        else:
            prompt = len(enc.encode(request.prompt or "", disallowed_special=()))
        return Usage(prompt, len(enc.encode(completion, disallowed_special=())))

    return count
