"""`/v1/files`: OpenAI's Files API for fine-tuning data (purpose `fine-tune`), validated on upload.

A client key sees the files it uploaded; an admin key sees all. Sync handlers: FastAPI runs them
in its thread pool, so validation and database I/O never stall the event loop.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from gateway.api.deps import client
from gateway.api.finetune import facade, owner_of
from gateway.auth import Principal

router = APIRouter(prefix="/v1/files")


@router.post("")
def upload(request: Request, file: UploadFile = File(...), purpose: str = Form(...),
           principal: Principal = Depends(client)) -> dict[str, Any]:
    content = file.file.read()
    created = facade(request).files.create(file.filename or "upload.jsonl", purpose, content,
                                            owner=owner_of(principal))
    return created.model_dump()


@router.get("")
def list_files(
    request: Request,
    purpose: str | None = Query(None, max_length=64),
    after: str | None = Query(None, max_length=64),
    limit: int = Query(10000, ge=1, le=10000),
    order: Literal["asc", "desc"] = "desc",
    principal: Principal = Depends(client),
) -> dict[str, Any]:
    page = facade(request).files.list(owner=owner_of(principal), purpose=purpose, after=after, limit=limit,
                                      order=order)
    return page.model_dump()


@router.get("/{file_id}")
def get_file(file_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).files.get(file_id, owner=owner_of(principal)).model_dump()


@router.get("/{file_id}/content")
def file_content(file_id: str, request: Request, principal: Principal = Depends(client)) -> Response:
    filename, content = facade(request).files.content(file_id, owner=owner_of(principal))
    safe = filename.replace('"', "")
    return Response(content, media_type="application/octet-stream",
                    headers={"content-disposition": f'attachment; filename="{safe}"'})


@router.delete("/{file_id}")
def delete_file(file_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).files.delete(file_id, owner=owner_of(principal)).model_dump()
