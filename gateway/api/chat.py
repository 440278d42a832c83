from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway import pipeline
from gateway.api.deps import client, request_id
from gateway.auth import Principal
from gateway.protocol import ChatCompletionRequest
from gateway.services import services

router = APIRouter()


@router.post("/v1/chat/completions")
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, principal: Principal = Depends(client)
) -> Response:
    return await pipeline.chat(services(request), principal, body, request_id(request))
