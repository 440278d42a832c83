"""`POST /v1/feedback`: judge an answer (score, corrected answer, guardrail label) by its completion
id or its `x-request-id`; the data flywheel (`finetune.flywheel`) turns it into training data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from finetune.records import FeedbackIn
from gateway.api.deps import admin, client
from gateway.api.finetune import facade
from gateway.auth import Principal

router = APIRouter(prefix="/v1/feedback")


@router.post("", status_code=201)
def add_feedback(body: FeedbackIn, request: Request, principal: Principal = Depends(client)) -> JSONResponse:
    record = facade(request).feedback.add(body, key_id=principal.key_id)
    return JSONResponse(record.model_dump(), status_code=201)


@router.get("")
def list_feedback(request: Request, limit: int = Query(100, ge=1, le=1000),
                  _: Principal = Depends(admin)) -> dict[str, Any]:
    return {"object": "list", "data": [f.model_dump() for f in facade(request).feedback.list(limit=limit)]}
