"""A small synchronous client for a running gateway's retrieval endpoints (the CLI's remote path).

Files are read here and sent as base64 in JSON batches below the gateway's body limit; the
gateway loads, chunks and embeds them with the model it already holds.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from rag.errors import BadDocument, RagError, StoreUnavailable
from rag.models import FileResult, IngestReport

MAX_BATCH_BYTES = 4 * 1024 * 1024  # raw bytes per request; base64 makes it ~5.6 MB, under the 8 MB default


class GatewayClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 600.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s, connect=5))

    def close(self) -> None:
        self._http.close()

    def reachable(self) -> bool:
        try:
            return self._http.get("/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise StoreUnavailable(f"cannot reach the gateway at {self.base_url}: {err}") from None
        if resp.status_code >= 400:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text[:300]
            cls = StoreUnavailable if resp.status_code in (502, 503, 504) else RagError
            raise cls(f"gateway answered {resp.status_code}: {message}")
        return resp.json()

    def ingest_files(
        self,
        files: Iterable[tuple[Path, str]],
        collection: str,
        *,
        tenant: str = "",
        metadata: dict[str, Any] | None = None,
        on_file: Callable[[int], None] | None = None,
    ) -> IngestReport:
        report = IngestReport(collection=collection)
        for batch, errors in _batches(files, metadata or {}):
            report.files.extend(errors)
            if batch:
                body = {"collection": collection, "tenant": tenant, "documents": batch}
                answer = self._call("POST", "/v1/rag/documents", json=body)
                report.files.extend(FileResult.model_validate(f) for f in answer["files"])
            if on_file is not None:
                on_file(len(batch) + len(errors))
        return report

    def delete_source(self, collection: str, source: str, tenant: str | None) -> int:
        params = {"source": source, **({"tenant": tenant} if tenant is not None else {})}
        return int(self._call("DELETE", f"/v1/rag/collections/{collection}/sources", params=params)["deleted"])

    def search(self, collection: str, query: str, top_k: int, filter: Any = None, mode: str | None = None
               ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"collection": collection, "query": query, "top_k": top_k}
        if filter is not None:
            body["filter"] = filter
        if mode is not None:
            body["mode"] = mode
        return list(self._call("POST", "/v1/rag/search", json=body)["data"])

    def collections(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/rag/collections")["data"])


def _batches(files: Iterable[tuple[Path, str]], metadata: dict[str, Any]
             ) -> Iterator[tuple[list[dict[str, Any]], list[FileResult]]]:
    batch: list[dict[str, Any]] = []
    errors: list[FileResult] = []
    size = 0
    for path, name in files:
        try:
            data = path.read_bytes()
        except OSError as err:
            errors.append(FileResult(source=name, status="error", error=BadDocument(name, f"cannot read file: {err.strerror or err}").reason))
            continue
        if len(data) > MAX_BATCH_BYTES:
            errors.append(FileResult(source=name, status="error",
                                     error=f"{len(data)} bytes is too large to upload; ingest it with --local "
                                           "while no gateway holds the store"))
            continue
        if batch and size + len(data) > MAX_BATCH_BYTES:
            yield batch, errors
            batch, errors, size = [], [], 0
        batch.append({"source": name, "content_base64": base64.b64encode(data).decode(), "metadata": metadata})
        size += len(data)
    if batch or errors:
        yield batch, errors
