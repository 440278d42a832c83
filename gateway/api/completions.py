from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway import pipeline
from gateway.api.deps import client, request_id
from gateway.auth import Principal
from gateway.protocol import CompletionRequest
from gateway.services import services

router = APIRouter()


@router.post("/v1/completions")
async def create_completion(
    body: CompletionRequest, request: Request, principal: Principal = Depends(client)
) -> Response:
    return await pipeline.completion(services(request), principal, body, request_id(request))
