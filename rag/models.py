"""Records that cross the package's edges: what goes in (documents) and what comes out (chunks)."""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Chunk(_Record):
    """One retrieved chunk. `score` orders results (RRF in hybrid mode, cosine in dense, BM25 in bm25);
    `similarity` is the cosine similarity to the query when it is known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    score: float
    source: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str = ""
    chunk_index: int = 0
    similarity: float | None = None

    def public(self) -> dict[str, Any]:
        """The wire shape of `POST /v1/rag/search`."""
        return {"id": self.id, "text": self.text, "score": self.score, "source": self.source,
                "metadata": self.metadata}


class DocumentIn(_Record):
    """A document handed over in memory (HTTP upload, tests): either text or the file's bytes.

    `source` names it (a path or file name); its extension picks the loader for `content`.
    """

    source: str = Field(min_length=1, max_length=1024)
    text: str | None = None
    content_base64: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_body(self) -> DocumentIn:
        if (self.text is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of 'text' or 'content_base64'")
        return self

    def content(self) -> bytes:
        if self.text is not None:
            return self.text.encode()
        try:
            return base64.b64decode(self.content_base64 or "", validate=True)
        except ValueError as err:
            raise ValueError("content_base64 is not valid base64") from err


FileStatus = Literal["added", "replaced", "unchanged", "error"]


class FileResult(_Record):
    source: str
    status: FileStatus
    chunks: int = 0
    error: str | None = None


class IngestReport(_Record):
    collection: str
    files: list[FileResult] = Field(default_factory=list)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files if f.status in ("added", "replaced"))

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "error"]

    def summary(self) -> dict[str, int]:
        counts = {"added": 0, "replaced": 0, "unchanged": 0, "error": 0}
        for f in self.files:
            counts[f.status] += 1
        return {**counts, "chunks": self.chunks}
