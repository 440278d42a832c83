"""Governed retrieval on Milvus: ingestion, hybrid search, tenant isolation.

    from rag import RagService, RagSettings, MiniLMEmbedder
    rag = RagService(RagSettings(), embedder=MiniLMEmbedder(model))
    chunks = await rag.search("docs", "how do I reset a password?", tenant="acme", top_k=5)

Nothing in this package imports `gateway`; the gateway imports it (gateway/api/rag.py).
"""

from rag.config import IndexSettings, RagSettings
from rag.context import citations, format_context
from rag.embedder import Embedder, MiniLMEmbedder
from rag.errors import (
    BadDocument,
    CollectionNotFound,
    InvalidArgument,
    InvalidFilter,
    RagError,
    StoreLocked,
    StoreUnavailable,
)
from rag.models import Chunk, DocumentIn, FileResult, IngestReport
from rag.retrieve import Retriever, whitespace_tokens
from rag.service import RagService

__all__ = [
    "BadDocument",
    "Chunk",
    "CollectionNotFound",
    "DocumentIn",
    "Embedder",
    "FileResult",
    "IndexSettings",
    "IngestReport",
    "InvalidArgument",
    "InvalidFilter",
    "MiniLMEmbedder",
    "RagError",
    "RagService",
    "RagSettings",
    "Retriever",
    "StoreLocked",
    "StoreUnavailable",
    "citations",
    "format_context",
    "whitespace_tokens",
]
