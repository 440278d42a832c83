"""The retrieval pipeline, in four stages:

1. retrieval   dense ANN and BM25 full-text from Milvus, fused by reciprocal rank (hybrid mode);
2. filtering   metadata and tenant conditions pushed down into both Milvus searches as one boolean
               expression (`rag.filters.scoped`), then the caller's `screen` hook (retrieval rails);
3. scoring     cosine similarity, the optional score threshold on it, optional MMR for diversity;
4. ordering    final order, `top_k`, and a token budget for the context.

`search` runs them all. The stages are also public so that an async caller can run stage 1 in a
worker thread and an async `screen` on its event loop (see `rag.service`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag import filters
from rag.config import Mode, RagSettings
from rag.embedder import Embedder
from rag.errors import InvalidArgument
from rag.fusion import mmr, rrf
from rag.models import Chunk
from rag.store import Hit, MilvusStore

log = logging.getLogger("rag.retrieve")

Screen = Callable[[list[Chunk]], list[Chunk]]
Tokenizer = Callable[[str], int]
UNSET: Any = object()  # "use the setting" where None is a meaningful value


def whitespace_tokens(text: str) -> int:
    """Default token count: whitespace-separated words (close to word pieces for English prose)."""
    return len(text.split())


@dataclass(frozen=True)
class Options:
    top_k: int
    mode: Mode
    mmr: bool
    mmr_lambda: float
    score_threshold: float | None
    token_budget: int | None
    tokenizer: Tokenizer = whitespace_tokens

    @property
    def needs_query_vector(self) -> bool:
        return self.mode != "bm25" or self.mmr or self.score_threshold is not None

    @property
    def needs_vectors(self) -> bool:
        return self.mmr or self.score_threshold is not None


@dataclass
class Candidates:
    chunks: list[Chunk]  # fused order, best first
    query_vector: np.ndarray | None = None
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


class Retriever:
    def __init__(self, store: MilvusStore, embedder: Embedder, settings: RagSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def options(
        self,
        top_k: int = 5,
        *,
        mode: Mode | None = None,
        mmr: bool | None = None,
        mmr_lambda: float | None = None,
        score_threshold: float | None = UNSET,
        token_budget: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> Options:
        s = self.settings
        if not 1 <= top_k <= s.max_top_k:
            raise InvalidArgument(f"top_k must be between 1 and {s.max_top_k}")
        if mode is not None and mode not in ("dense", "bm25", "hybrid"):
            raise InvalidArgument("mode must be one of dense, bm25, hybrid")
        return Options(
            top_k=top_k,
            mode=mode or s.default_mode,
            mmr=s.mmr if mmr is None else mmr,
            mmr_lambda=s.mmr_lambda if mmr_lambda is None else mmr_lambda,
            score_threshold=s.score_threshold if score_threshold is UNSET else score_threshold,
            token_budget=token_budget,
            tokenizer=tokenizer or whitespace_tokens,
        )

    def search(
        self,
        collection: str,
        query: str,
        *,
        tenant: str | None,
        top_k: int = 5,
        filter: str | Mapping[str, Any] | None = None,
        screen: Screen | None = None,
        **kw: Any,
    ) -> list[Chunk]:
        """Ranked chunks for `query`, never another tenant's. `tenant=None` is the unscoped (admin) search."""
        opts = self.options(top_k, **kw)
        cands = self.retrieve(collection, query, tenant=tenant, filter=filter, opts=opts)
        if screen is not None:
            cands = self.screened(cands, screen(list(cands.chunks)))
        return self.finish(cands, opts)

    # ── stage 1 (with stage 2's push-down) ───────────────────────────────────

    def retrieve(self, collection: str, query: str, *, tenant: str | None,
                 filter: str | Mapping[str, Any] | None, opts: Options) -> Candidates:
        if not query or not query.strip():
            raise InvalidArgument("query must not be empty")
        expr = filters.scoped(tenant, filter)  # validated before any work is done
        self.store.require(collection)
        fetch = min(16384, max(self.settings.candidates, opts.top_k * (3 if opts.mmr else 1)))
        qv = self.embedder.embed([query])[0] if opts.needs_query_vector else None

        rankings: list[list[Hit]] = []
        if opts.mode in ("dense", "hybrid"):
            assert qv is not None
            rankings.append(self.store.search_dense(collection, qv, fetch, expr, with_vectors=opts.mmr))
        if opts.mode in ("bm25", "hybrid"):
            rankings.append(self.store.search_text(collection, query, fetch, expr, with_vectors=opts.needs_vectors))

        hits: dict[str, Hit] = {}
        sims: dict[str, float] = {}
        vectors: dict[str, np.ndarray] = {}
        for i, ranking in enumerate(rankings):
            dense = opts.mode != "bm25" and i == 0
            for h in ranking:
                if tenant is not None and h.fields.get("tenant") != tenant:
                    # Cannot happen while the expression holds the tenant; a second lock on the door.
                    log.error("dropped a hit of tenant %r from a search scoped to %r", h.fields.get("tenant"), tenant)
                    continue
                hits.setdefault(h.id, h)
                vec = h.fields.get("vector")
                if vec is not None:
                    vectors[h.id] = np.asarray(vec, dtype=np.float32)
                if dense:
                    sims[h.id] = h.distance  # inner product of unit vectors: the cosine
                elif h.id not in sims and qv is not None and h.id in vectors:
                    sims[h.id] = float(vectors[h.id] @ qv)

        if opts.mode == "hybrid":
            order = rrf([[h.id for h in r if h.id in hits] for r in rankings], k=self.settings.rrf_k)
        elif opts.mode == "dense":
            order = [(h.id, h.distance) for h in rankings[0] if h.id in hits]
        else:  # BM25 scores are non-negative; Milvus Lite 3 reports them negated
            order = [(h.id, abs(h.distance)) for h in rankings[0] if h.id in hits]
        chunks = [_chunk(hits[i], score, sims.get(i)) for i, score in order]
        return Candidates(chunks, qv, vectors)

    # ── stage 2: the caller's screen ─────────────────────────────────────────

    @staticmethod
    def screened(cands: Candidates, kept: list[Chunk]) -> Candidates:
        """What the screen returned, limited to chunks it was given: it may drop or redact, not add."""
        allowed = {c.id: c for c in cands.chunks}
        out: list[Chunk] = []
        for c in kept:
            original = allowed.get(c.id)
            if original is None:
                log.warning("screen returned chunk %r that was not among the candidates; dropped", c.id)
                continue
            # Keep the screen's text (it may redact) but never its tenant or source.
            out.append(original.model_copy(update={"text": c.text}) if c.text != original.text else original)
        return Candidates(out, cands.query_vector, cands.vectors)

    # ── stages 3 and 4 ───────────────────────────────────────────────────────

    def finish(self, cands: Candidates, opts: Options) -> list[Chunk]:
        chunks = cands.chunks
        if opts.score_threshold is not None:
            chunks = [c for c in chunks if c.similarity is not None and c.similarity >= opts.score_threshold]
        if opts.mmr and chunks and cands.query_vector is not None:
            with_vec = [c for c in chunks if c.id in cands.vectors]
            picked = mmr(cands.query_vector, np.stack([cands.vectors[c.id] for c in with_vec]),
                         opts.top_k, opts.mmr_lambda) if with_vec else []
            chunks = [with_vec[i] for i in picked]  # MMR's pick order is the final order
        else:
            chunks = sorted(chunks, key=lambda c: -c.score)  # stable: fusion order breaks ties
        return within_budget(chunks[: opts.top_k], opts.token_budget, opts.tokenizer)


def within_budget(chunks: list[Chunk], budget: int | None, tokenizer: Tokenizer = whitespace_tokens) -> list[Chunk]:
    """The longest best-first prefix whose texts fit in `budget` tokens (None: no budget)."""
    if budget is None:
        return chunks
    out: list[Chunk] = []
    used = 0
    for c in chunks:
        used += tokenizer(c.text)
        if used > budget:
            break
        out.append(c)
    return out


def _chunk(hit: Hit, score: float, similarity: float | None) -> Chunk:
    f = hit.fields
    meta = f.get("metadata") or {}
    return Chunk(
        id=hit.id, text=f.get("text", ""), score=float(score), source=f.get("source", ""),
        metadata=meta if isinstance(meta, dict) else {}, tenant=f.get("tenant", ""),
        chunk_index=int(f.get("chunk_index", 0)), similarity=similarity,
    )
