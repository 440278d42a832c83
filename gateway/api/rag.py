"""Retrieval endpoints: HTTP plumbing over the `RagService` on `app.state.rag`.

    POST   /v1/rag/search                      client key; the tenant comes from the key
    POST   /v1/rag/documents                   admin key; JSON or multipart upload
    DELETE /v1/rag/collections/{c}/sources     admin key; ?source=NAME[&tenant=T]
    GET    /v1/rag/collections                 client key (chunk counts for admin keys)

For the chat pipeline: `await app.state.rag.retrieve_for_chat(query, collection, top_k, filter,
search_tenant(principal), screen)`, `rag.citations(chunks)`, and `gateway_error(err)` for a RagError.

Tenancy: a key with a tenant only ever sees and writes that tenant. A client key without one
uses the shared tenant "" (what an unscoped ingestion writes); an admin key without one is
unscoped: it searches every tenant and chooses the tenant it ingests into.
"""

from __future__ import annotations

import base64
import logging
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway import errors
from gateway.api.deps import admin, client
from gateway.auth import Principal
from gateway.governance.state import Governance
from gateway.services import services
from rag import (
    BadDocument,
    CollectionNotFound,
    DocumentIn,
    InvalidArgument,
    InvalidFilter,
    RagError,
    RagService,
    StoreLocked,
    StoreUnavailable,
)
from rag.models import IngestReport

log = logging.getLogger("gateway.rag")
router = APIRouter()
MAX_DOCUMENTS = 1000


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: str | None = Field(None, description="Default: the configured default collection.")
    query: str = Field(min_length=1, max_length=8192)
    top_k: int = Field(5, ge=1, le=100)
    filter: str | dict[str, Any] | None = None
    mode: Literal["dense", "bm25", "hybrid"] | None = None


class DocumentsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: str | None = None
    tenant: str | None = None
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)


def rag_service(request: Request) -> RagService:
    svc = getattr(request.app.state, "rag", None)
    if svc is None:
        raise errors.ServiceUnavailable("Retrieval is not enabled on this gateway.")
    return svc  # type: ignore[no-any-return]


def gateway_error(err: RagError) -> errors.GatewayError:
    """The gateway's error for a retrieval error. Store details (paths, hosts) stay in the log."""
    if isinstance(err, CollectionNotFound):
        return errors.NotFound(f"The collection '{err.collection}' does not exist.", param="collection")
    if isinstance(err, StoreLocked):
        log.warning("retrieval store busy: %s", err.message)
        return errors.ServiceUnavailable("The retrieval store is held by another process (an ingestion?); "
                                         "try again when it is done.")
    if isinstance(err, StoreUnavailable):
        log.warning("retrieval store unavailable: %s", err.message)
        return errors.ServiceUnavailable("The retrieval store is unavailable; try again later.")
    if isinstance(err, InvalidFilter):
        return errors.InvalidRequest(f"Invalid filter: {err.message}", param="filter")
    if isinstance(err, BadDocument):
        return errors.InvalidRequest(err.message, param="documents")
    if isinstance(err, InvalidArgument):
        return errors.InvalidRequest(err.message)
    log.error("retrieval error: %s", err.message)
    return errors.GatewayError("The retrieval store failed to process the request.")


def search_tenant(principal: Principal) -> str | None:
    if principal.tenant is not None:
        return principal.tenant
    return None if principal.is_admin else ""


def _write_tenant(principal: Principal, requested: str | None) -> str:
    if principal.tenant is not None:
        if requested not in (None, principal.tenant):
            raise errors.PermissionDenied("This key may only write to its own tenant.", param="tenant")
        return principal.tenant
    return requested or ""


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def charge_query(gov: Governance, rag: RagService, principal: Principal, question: str) -> None:
    """A question's embedding is spent on the caller's behalf: its tokens count against their token
    limits and spend, priced as the embedding model (`governance.prices`)."""
    count = getattr(rag.embedder, "count_tokens", None)  # MiniLM counts its own word pieces
    tokens = count(question) if count is not None else len(question.split())
    cost = gov.prices.cost(rag.embedding_model or "*", tokens, 0)
    await gov.record_usage(principal, tokens=tokens, cost=cost)


@router.post("/v1/rag/search")
async def search(body: SearchBody, request: Request, principal: Principal = Depends(client)) -> Response:
    rag = rag_service(request)
    try:
        chunks = await rag.search(
            body.collection or rag.settings.default_collection, body.query, tenant=search_tenant(principal),
            top_k=body.top_k, filter=body.filter, mode=body.mode,
        )
    except RagError as err:
        raise gateway_error(err) from None
    if (body.mode or rag.settings.default_mode) != "bm25":
        await charge_query(services(request).governance, rag, principal, body.query)
    return _json({"data": [c.public() for c in chunks]})


@router.post("/v1/rag/documents")
async def upload_documents(request: Request, principal: Principal = Depends(admin)) -> Response:
    rag = rag_service(request)
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if content_type.startswith("multipart/form-data"):
        body = _from_multipart(raw, content_type)
    else:
        try:
            body = DocumentsBody.model_validate_json(raw)
        except ValidationError as err:
            first: dict[str, Any] = dict(err.errors()[0]) if err.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or None
            raise errors.InvalidRequest(f"Invalid request body: {first.get('msg', 'invalid')}", param=where) from None
    collection = body.collection or rag.settings.default_collection
    tenant = _write_tenant(principal, body.tenant)
    try:
        report = await rag.ingest_documents(collection, body.documents, tenant=tenant)
    except RagError as err:
        raise gateway_error(err) from None
    return _json(_report(report))


@router.delete("/v1/rag/collections/{collection}/sources")
async def delete_source(
    collection: str,
    request: Request,
    source: str = Query(min_length=1, max_length=1024),
    tenant: str | None = Query(None, description="Default: every tenant (an unscoped admin key only)."),
    principal: Principal = Depends(admin),
) -> Response:
    rag = rag_service(request)
    scope = _write_tenant(principal, tenant) if (principal.tenant is not None or tenant is not None) else None
    try:
        deleted = await rag.delete_source(collection, source, tenant=scope)
    except RagError as err:
        raise gateway_error(err) from None
    return _json({"collection": collection, "source": source, "deleted": deleted})


@router.get("/v1/rag/collections")
async def list_collections(request: Request, principal: Principal = Depends(client)) -> Response:
    rag = rag_service(request)
    try:
        rows = await rag.collections(counts=principal.is_admin and principal.tenant is None)
    except RagError as err:
        raise gateway_error(err) from None
    return _json({"data": rows})


def _report(report: IngestReport) -> dict[str, Any]:
    return {"collection": report.collection, "files": [f.model_dump() for f in report.files],
            "summary": report.summary()}


def _from_multipart(raw: bytes, content_type: str) -> DocumentsBody:
    """`collection`, `tenant`, `metadata` (JSON object) fields and one or more file parts.

    Parsed with the standard library's MIME parser (binary-safe), so no extra dependency."""
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    if not msg.is_multipart():
        raise errors.InvalidRequest("Malformed multipart body.")
    fields: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    for part in msg.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename:
            files.append((filename, payload))
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", errors="replace")
    if not files:
        raise errors.InvalidRequest("No file parts in the upload.", param="files")
    try:
        metadata = orjson.loads(fields["metadata"]) if fields.get("metadata") else {}
    except orjson.JSONDecodeError:
        raise errors.InvalidRequest("'metadata' must be a JSON object.", param="metadata") from None
    if not isinstance(metadata, dict):
        raise errors.InvalidRequest("'metadata' must be a JSON object.", param="metadata")
    try:
        return DocumentsBody(
            collection=fields.get("collection") or None,
            tenant=fields.get("tenant"),
            documents=[DocumentIn(source=n, content_base64=base64.b64encode(d).decode(), metadata=metadata)
                       for n, d in files],
        )
    except ValidationError as err:
        raise errors.InvalidRequest(f"Invalid upload: {err.errors()[0].get('msg', 'invalid')}") from None
