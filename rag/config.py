"""`RagSettings`: every knob of ingestion, storage and retrieval, validated once.

The gateway embeds it as the `rag` section of its settings tree; the CLI builds it from the
same file or from flags. Nothing here reads the environment: whoever builds it decides.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rag.errors import InvalidArgument

ROOT = Path(__file__).resolve().parent.parent

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# Tenants end up inside filter expressions; the pattern keeps quotes and backslashes out for good.
_TENANT = re.compile(r"^[A-Za-z0-9_.:@/+=-]{0,128}$")

IndexType = Literal["FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "AUTOINDEX"]
Mode = Literal["dense", "bm25", "hybrid"]
Consistency = Literal["Strong", "Session", "Bounded", "Eventually"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexSettings(_Strict):
    """The dense vector index. `type` unset: FLAT on Milvus Lite, AUTOINDEX on a server.

    Why: Milvus Lite 2.5 keeps a collection in one growing segment. With FLAT it searches it
    exactly (12 ms p50 at 100k chunks here, near the memory-bandwidth floor of brute force); with
    IVF_FLAT or AUTOINDEX it uses segcore's interim IVF index, whose nlist/nprobe are fixed inside
    Milvus Lite (it ignores `params` and `search_params`): 1.8 ms but recall@10 0.90 at 100k, and
    no different from FLAT below 32k chunks. A server builds a real index; AUTOINDEX lets it choose
    a graph index with tuned parameters. See benchmarks/rag_search.py for the numbers.
    """

    type: IndexType | None = None
    # Embeddings are L2-normalised, so inner product is cosine similarity without the norms.
    metric: Literal["IP", "COSINE"] = "IP"
    params: dict[str, Any] = Field(default_factory=dict, description="Build parameters (e.g. M, efConstruction).")
    search_params: dict[str, Any] = Field(default_factory=dict, description="Per-query parameters (e.g. ef, nprobe).")


class RagSettings(_Strict):
    enabled: bool = Field(default=True, description="Serve retrieval (the store opens at start-up).")
    uri: str = Field(default="var/rag.db", description="Milvus Lite file (relative to the repo root) or http(s)://host:port.")
    token: str | None = Field(default=None, description="Milvus server credentials (user:password or API key).")
    db_name: str = ""
    timeout_s: float = Field(default=10.0, gt=0, description="Per call to Milvus; also bounds connecting.")
    consistency_level: Consistency = "Session"

    default_collection: str = "docs"
    dim: int = Field(default=384, ge=1)
    max_text_bytes: int = Field(default=16384, ge=256, le=65535, description="VARCHAR limit for one chunk.")
    tenant_partitions: int = Field(default=64, ge=1, le=1024, description="Partition-key buckets on a server.")
    bm25_analyzer: dict[str, Any] | None = Field(
        default_factory=lambda: {"type": "english"},
        description="Milvus analyzer for the BM25 text field; None: Milvus's standard analyzer.",
    )

    chunk_size: int = Field(default=800, ge=50, description="Characters per chunk.")
    chunk_overlap: int = Field(default=120, ge=0)
    embedding_batch_size: int = Field(default=32, ge=1)
    embedding_group: int = Field(default=512, ge=1, description="Chunks embedded per encode call (sorted by length).")
    insert_batch_size: int = Field(default=256, ge=1)

    index: IndexSettings = IndexSettings()
    hybrid: bool = Field(default=True, description="Default mode: hybrid (dense + BM25, RRF) or dense only.")
    candidates: int = Field(default=50, ge=1, le=1000, description="Hits fetched per retriever before fusion.")
    rrf_k: int = Field(default=60, ge=1)
    mmr: bool = False
    mmr_lambda: float = Field(default=0.7, ge=0.0, le=1.0, description="1: relevance only, 0: diversity only.")
    score_threshold: float | None = Field(default=None, ge=-1.0, le=1.0, description="Minimum cosine similarity.")
    context_token_budget: int | None = Field(default=1500, ge=1, description="Tokens of context for chat retrieval.")
    max_top_k: int = Field(default=100, ge=1, le=1000)

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: Any) -> int:
        size = info.data.get("chunk_size")
        if size is not None and v >= size:
            raise ValueError("must be smaller than chunk_size")
        return v

    @model_validator(mode="after")
    def _chunks_fit(self) -> RagSettings:
        # A character is at most 4 bytes of UTF-8; a chunk must always fit its VARCHAR.
        if self.chunk_size * 4 > self.max_text_bytes:
            raise ValueError(f"chunk_size {self.chunk_size} can exceed max_text_bytes {self.max_text_bytes} in UTF-8")
        return self

    @field_validator("default_collection")
    @classmethod
    def _collection_name(cls, v: str) -> str:
        try:
            return check_collection_name(v)
        except InvalidArgument as err:  # pydantic reports ValueErrors with the field's name
            raise ValueError(err.message) from None

    @property
    def embedded(self) -> bool:
        """A Milvus Lite file rather than a server URI."""
        return "://" not in self.uri

    def resolved_uri(self) -> str:
        if not self.embedded:
            return self.uri
        p = Path(self.uri)
        return str(p if p.is_absolute() else ROOT / p)

    def index_type(self) -> str:
        if self.index.type is not None:
            return self.index.type
        return "FLAT" if self.embedded else "AUTOINDEX"

    @property
    def default_mode(self) -> Mode:
        return "hybrid" if self.hybrid else "dense"


def check_collection_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(
            f"invalid collection name {name!r}: letters, digits and underscores, starting with a letter or underscore"
        )
    return name


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise InvalidArgument(f"invalid tenant {tenant!r}: up to 128 of A-Z a-z 0-9 _ . : @ / + = -")
    return tenant
