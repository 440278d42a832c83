"""Admin API: virtual keys, the request log and the audit log. Admin keys only.

Key changes and request-log reads are written to the audit log (actor = the admin key's id);
reading keys and the audit log itself is not. Handlers are plain `def`: FastAPI runs them in
its thread pool, so their database calls never stall the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gateway import errors
from gateway.api.deps import admin
from gateway.auth import Principal
from gateway.governance.models import KeySpec, Page, parse_cursor
from gateway.governance.records import RequestQuery
from gateway.governance.state import governance
from prompts.errors import StorageBusy

router = APIRouter(prefix="/v1/admin")
Admin = Annotated[Principal, Depends(admin)]


@contextmanager
def _storage() -> Iterator[None]:
    try:
        yield
    except StorageBusy as exc:
        raise errors.ServiceUnavailable("The governance database is busy; try again shortly.") from exc


@router.post("/keys", status_code=201)
def create_key(spec: KeySpec, request: Request, principal: Admin) -> dict[str, Any]:
    """Create a virtual key; the response is the only time its secret (`key`) is shown."""
    with _storage():
        return governance(request).keys.create(spec, actor=principal.key_id).public()


@router.get("/keys")
def list_keys(
    request: Request,
    principal: Admin,
    team: str | None = None,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    keys, next_cursor = governance(request).keys.list_keys(
        team=team, include_revoked=include_revoked, limit=limit, cursor=cursor
    )
    return Page(data=[k.public() for k in keys], next_cursor=next_cursor, has_more=next_cursor is not None).model_dump()


@router.get("/keys/{key_id}")
def get_key(key_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    return governance(request).keys.get(key_id).public()


@router.delete("/keys/{key_id}")
def revoke_key(key_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    """Revoke at once on this replica; other replicas follow via Redis, or within the key cache TTL."""
    with _storage():
        return governance(request).keys.revoke(key_id, actor=principal.key_id).public()


@router.post("/keys/{key_id}/rotate")
def rotate_key(key_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    """A new secret for the same key id and settings; the old secret stops working."""
    with _storage():
        return governance(request).keys.rotate(key_id, actor=principal.key_id).public()


@router.get("/requests")
def list_requests(request: Request, principal: Admin, q: Annotated[RequestQuery, Query()]) -> dict[str, Any]:
    gov = governance(request)
    gov.audit.write(actor=principal.key_id, action="requests.query", detail=q.model_dump(mode="json", exclude_none=True))
    return gov.requests.query(q).model_dump()


@router.get("/requests/export")
def export_requests(request: Request, principal: Admin, q: Annotated[RequestQuery, Query()]) -> StreamingResponse:
    """Every matching record as JSON lines, oldest first (`limit` is ignored)."""
    if q.cursor is not None:
        parse_cursor(q.cursor)  # a bad cursor is a 400 now, not an error after the stream has started
    gov = governance(request)
    gov.audit.write(actor=principal.key_id, action="requests.export", detail=q.model_dump(mode="json", exclude_none=True))
    return StreamingResponse(
        gov.requests.export(q),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="requests.jsonl"'},
    )


@router.get("/audit")
def list_audit(
    request: Request,
    principal: Admin,
    action: str | None = None,
    actor: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    page = governance(request).audit.list(
        action=action, actor=actor, target_id=target_id, since=since, limit=limit, cursor=cursor
    )
    return page.model_dump()
