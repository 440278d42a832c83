"""`RagService`: the one object a process holds (the gateway keeps it on `app.state.rag`).

It owns the store (one Milvus connection), the embedder, the ingestor and the retriever, and
offers them as coroutines: Milvus and the model are blocking, so their work runs in worker
threads, while a `screen` hook (retrieval rails) may be sync or async and runs on the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.config import Mode, RagSettings, check_collection_name
from rag.embedder import Embedder, MiniLMEmbedder
from rag.ingest import Ingestor
from rag.models import Chunk, DocumentIn, IngestReport
from rag.retrieve import UNSET, Candidates, Retriever, Tokenizer
from rag.store import MilvusStore

log = logging.getLogger("rag.service")
AsyncScreen = Callable[[list[Chunk]], list[Chunk] | Awaitable[list[Chunk]]]


class _LazyEmbedder:
    """Loads MiniLM on first use, for processes that were not handed a model (the CLI)."""

    def __init__(self, batch_size: int) -> None:
        self._batch = batch_size
        self._model: MiniLMEmbedder | None = None
        self._lock = threading.Lock()
        self.dim = 384

    def _get(self) -> MiniLMEmbedder:
        with self._lock:
            if self._model is None:
                self._model = MiniLMEmbedder(batch_size=self._batch)
                self.dim = self._model.dim
        return self._model

    def embed(self, texts: Sequence[str]) -> Any:
        return self._get().embed(texts)


class RagService:
    def __init__(
        self,
        settings: RagSettings | None = None,
        *,
        embedder: Embedder | None = None,
        owner_url: str | None = None,
        embedding_model: str | None = None,
    ) -> None:
        """`embedder`: pass the gateway's loaded model as `MiniLMEmbedder(model, lock=...)` so it is
        loaded once; `owner_url`: the gateway's base URL, recorded beside an embedded store so
        that `llmops rag ingest` can send its files there instead of fighting over the file."""
        self.settings = settings or RagSettings()
        # The gateway's name for the embedding model: query embeddings are charged under it.
        self.embedding_model = embedding_model
        self.embedder: Embedder = embedder or _LazyEmbedder(self.settings.embedding_batch_size)
        self.store = MilvusStore(self.settings, owner_url=owner_url)
        self.retriever = Retriever(self.store, self.embedder, self.settings)
        self.ingestor = Ingestor(self.store, self.embedder, self.settings)

    # ── lifecycle ────────────────────────────────────────────────────────────

    async def start(self) -> bool:
        """Try to open the store now, so an embedded store's file is taken at start-up. Never raises:
        when Milvus is down, or the file is held by a CLI ingestion, every call retries and answers
        StoreUnavailable meanwhile. Returns whether the store is open."""
        from rag.errors import StoreUnavailable

        try:
            await asyncio.to_thread(self.store.open)
        except StoreUnavailable as err:
            log.warning("retrieval store not open yet: %s", err.message)
            return False
        return True

    async def aclose(self) -> None:
        await asyncio.to_thread(self.store.close)

    def close(self) -> None:
        self.store.close()

    # ── retrieval ────────────────────────────────────────────────────────────

    async def search(
        self,
        collection: str,
        query: str,
        *,
        tenant: str | None,
        top_k: int = 5,
        filter: str | Mapping[str, Any] | None = None,
        mode: Mode | None = None,
        screen: AsyncScreen | None = None,
        mmr: bool | None = None,
        score_threshold: float | None = UNSET,
        token_budget: int | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> list[Chunk]:
        """Ranked chunks, best first; `tenant=None` only for an unscoped (admin) caller."""
        opts = self.retriever.options(top_k, mode=mode, mmr=mmr, score_threshold=score_threshold,
                                      token_budget=token_budget, tokenizer=tokenizer)
        cands = await asyncio.to_thread(
            self.retriever.retrieve, collection, query, tenant=tenant, filter=filter, opts=opts
        )
        if screen is not None:
            cands = await _screen(cands, screen)
        return self.retriever.finish(cands, opts)

    async def retrieve_for_chat(
        self,
        query: str,
        collection: str | None,
        top_k: int,
        filter: str | Mapping[str, Any] | None,
        tenant: str | None,
        screen: AsyncScreen | None = None,
        *,
        tokenizer: Tokenizer | None = None,
        token_budget: int | None = UNSET,
    ) -> list[Chunk]:
        """Context for a chat request: `search` with the context token budget applied
        (`settings.context_token_budget` unless given; counted with `tokenizer`, default words)."""
        budget = self.settings.context_token_budget if token_budget is UNSET else token_budget
        return await self.search(collection or self.settings.default_collection, query, tenant=tenant,
                                 top_k=top_k, filter=filter, screen=screen, token_budget=budget,
                                 tokenizer=tokenizer)

    # ── ingestion and administration ─────────────────────────────────────────

    async def ingest_documents(self, collection: str, documents: Sequence[DocumentIn], *,
                               tenant: str = "") -> IngestReport:
        return await asyncio.to_thread(self.ingestor.ingest_documents, documents, collection, tenant=tenant)

    async def ingest_paths(self, collection: str, paths: Sequence[str | Path], *, tenant: str = "",
                           metadata: dict[str, Any] | None = None) -> IngestReport:
        return await asyncio.to_thread(self.ingestor.ingest_paths, paths, collection, tenant=tenant,
                                       metadata=metadata)

    async def delete_source(self, collection: str, source: str, *, tenant: str | None) -> int:
        return await asyncio.to_thread(self.ingestor.delete_source, collection, source, tenant=tenant)

    async def collections(self, *, counts: bool = False) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            names = self.store.list_collections()
            if not counts:
                return [{"name": n} for n in names]
            return [{"name": n, "chunks": self.store.count(n)} for n in names]

        return await asyncio.to_thread(run)

    async def drop_collection(self, collection: str) -> None:
        check_collection_name(collection)
        await asyncio.to_thread(self.store.drop_collection, collection)


async def _screen(cands: Candidates, screen: AsyncScreen) -> Candidates:
    result = screen(list(cands.chunks))
    if inspect.isawaitable(result):
        result = await result
    return Retriever.screened(cands, list(result))
