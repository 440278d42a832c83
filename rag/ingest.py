"""Ingestion: files or in-memory documents to chunks in Milvus, idempotently.

Each source (a file path or name, per tenant) carries a fingerprint: a digest of its bytes, its
metadata and the chunking settings. Re-ingesting a source with the same fingerprint and all of its
chunks present is a no-op. A changed source is replaced: its new chunks are inserted first and the
old ones deleted after, so a search running meanwhile never sees the source missing (at worst
briefly twice). A per-file failure (unreadable, unsupported, no text) is reported for that file and
the batch goes on; a store failure stops the batch, since every later file would fail the same way.

Chunks from several files are embedded together, sorted by length (less padding), in groups of
`embedding_group`, with a tqdm progress bar counting chunks.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rag import filters, loaders
from rag.chunking import Chunker, Piece
from rag.config import RagSettings, check_collection_name, check_tenant
from rag.embedder import Embedder
from rag.errors import BadDocument
from rag.models import DocumentIn, FileResult, IngestReport
from rag.store import QUERY_WINDOW, MilvusStore

EMBED_SLICE = 128  # chunks per progress-bar step


def source_key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:32]


@dataclass
class _Item:
    source: str
    read: Callable[[], bytes]
    metadata: dict[str, Any]
    default_kind: str | None = None  # for text given inline under a name without an extension


@dataclass
class _Prepared:
    source: str
    key: str
    fingerprint: str
    status: str  # added | replaced
    pieces: list[Piece]
    metadata: dict[str, Any]


class Ingestor:
    def __init__(self, store: MilvusStore, embedder: Embedder, settings: RagSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
        # Two ingestions of one source at once could each delete the other's fresh chunks.
        self._lock = threading.Lock()

    # ── entry points ─────────────────────────────────────────────────────────

    def ingest_paths(
        self,
        paths: Sequence[str | Path],
        collection: str,
        *,
        tenant: str = "",
        metadata: dict[str, Any] | None = None,
        progress: bool = False,
        source_root: str | Path | None = None,
    ) -> IngestReport:
        """Files and directories (recursively, supported extensions only). A file's source is its
        path as given, or relative to `source_root` when one is given."""
        items = (_Item(name, _reader(p, name), dict(metadata or {})) for p, name in expand(paths, source_root))
        return self._run(collection, tenant, items, progress)

    def ingest_documents(
        self, documents: Sequence[DocumentIn], collection: str, *, tenant: str = "", progress: bool = False
    ) -> IngestReport:
        items = (_Item(d.source, _content(d), dict(d.metadata), "text" if d.text is not None else None)
                 for d in documents)
        return self._run(collection, tenant, items, progress)

    def delete_source(self, collection: str, source: str, *, tenant: str | None) -> int:
        """Remove a source's chunks, in one tenant or (None) in every tenant. Returns the count removed."""
        self.store.require(collection)
        expr = filters.source_condition(tenant, source_key(source))
        with self._lock:
            before = self.store.count(collection, expr)
            if before:
                self.store.delete(collection, expr)
        return before

    # ── the batch ────────────────────────────────────────────────────────────

    def _run(self, collection: str, tenant: str, items: Iterable[_Item], progress: bool) -> IngestReport:
        check_collection_name(collection)
        check_tenant(tenant)
        report = IngestReport(collection=collection)
        with self._lock, tqdm(total=0, unit="chunk", desc=f"ingest {collection}", disable=not progress) as bar:
            self.store.ensure_collection(collection)
            pending: list[_Prepared] = []
            for item in items:
                try:
                    prepared = self._prepare(collection, tenant, item)
                except BadDocument as err:
                    report.files.append(FileResult(source=item.source, status="error", error=err.reason))
                    continue
                if isinstance(prepared, FileResult):
                    report.files.append(prepared)
                    continue
                pending.append(prepared)
                bar.total += len(prepared.pieces)
                bar.refresh()
                if sum(len(p.pieces) for p in pending) >= self.settings.embedding_group:
                    report.files.extend(self._write(collection, tenant, pending, bar))
                    pending = []
            if pending:
                report.files.extend(self._write(collection, tenant, pending, bar))
        return report

    def _prepare(self, collection: str, tenant: str, item: _Item) -> _Prepared | FileResult:
        data = item.read()
        try:
            meta_json = json.dumps(item.metadata, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise BadDocument(item.source, f"metadata is not plain JSON ({err})") from None
        fp = hashlib.sha256(
            b"\0".join([data, meta_json.encode(),
                        f"{self.settings.chunk_size}/{self.settings.chunk_overlap}/v1".encode()])
        ).hexdigest()[:32]
        key = source_key(item.source)
        rows = self.store.query(collection, filters.source_condition(tenant, key),
                                ["fingerprint", "chunk_count"], limit=QUERY_WINDOW)
        if rows and all(r["fingerprint"] == fp and r["chunk_count"] == len(rows) for r in rows):
            return FileResult(source=item.source, status="unchanged", chunks=len(rows))
        pieces = self.chunker.split(loaders.load_bytes(item.source, data, item.default_kind))
        if not pieces:
            raise BadDocument(item.source, "no text in the file")
        return _Prepared(item.source, key, fp, "replaced" if rows else "added", pieces, item.metadata)

    def _write(self, collection: str, tenant: str, batch: list[_Prepared], bar: tqdm) -> list[FileResult]:
        texts = [p.text for doc in batch for p in doc.pieces]
        vectors = self._embed(texts, bar)
        rows: list[dict[str, Any]] = []
        at = 0
        for doc in batch:
            n = len(doc.pieces)
            for i, piece in enumerate(doc.pieces):
                rows.append({
                    "id": hashlib.sha256(f"{tenant}\0{doc.key}\0{doc.fingerprint}\0{i}".encode()).hexdigest()[:32],
                    "text": piece.text,
                    "vector": vectors[at + i].tolist(),
                    "tenant": tenant,
                    "source": doc.source,
                    "source_key": doc.key,
                    "fingerprint": doc.fingerprint,
                    "chunk_index": i,
                    "chunk_count": n,
                    "metadata": {**doc.metadata, **piece.metadata},
                })
            at += n
        self.store.insert(collection, rows)
        for doc in batch:
            if doc.status == "replaced":  # after the insert: the source is never missing
                cond = filters.source_condition(tenant, doc.key)
                self.store.delete(collection, f'{cond} and fingerprint != "{doc.fingerprint}"')
        return [FileResult(source=d.source, status=d.status, chunks=len(d.pieces)) for d in batch]  # type: ignore[arg-type]

    def _embed(self, texts: list[str], bar: tqdm) -> Any:
        import numpy as np

        # Longest first, so each model batch pads to similar lengths; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        parts = []
        for s in range(0, len(order), EMBED_SLICE):
            idx = order[s : s + EMBED_SLICE]
            parts.append(self.embedder.embed([texts[i] for i in idx]))
            bar.update(len(idx))
        out = np.empty_like(np.concatenate(parts)) if parts else np.zeros((0, 0), dtype=np.float32)
        if parts:
            out[order] = np.concatenate(parts)
        return out


def expand(paths: Sequence[str | Path], source_root: str | Path | None = None) -> Iterator[tuple[Path, str]]:
    """(path, source name) for each file; directories contribute their supported files, sorted.
    A file named explicitly is passed on even if unsupported, so that it gets its own error."""
    root = Path(source_root).resolve() if source_root else None
    for raw in paths:
        p = Path(raw)
        files = sorted(f for f in p.rglob("*") if f.is_file() and loaders.supported(f)) if p.is_dir() else [p]
        for f in files:
            name = str(f)
            if root is not None:
                try:
                    name = str(f.resolve().relative_to(root))
                except ValueError:
                    pass
            yield f, name


def _reader(path: Path, name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return path.read_bytes()
        except OSError as err:
            raise BadDocument(name, f"cannot read file: {err.strerror or err}") from None

    return read


def _content(doc: DocumentIn) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return doc.content()
        except ValueError as err:
            raise BadDocument(doc.source, str(err)) from None

    return read
