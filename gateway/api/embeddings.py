from __future__ import annotations

import base64

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from gateway import errors
from gateway.api.deps import client, request_id
from gateway.auth import Principal
from gateway.backends.base import Usage
from gateway.exchange import Exchange
from gateway.pipeline import begin
from gateway.protocol import EmbeddingRequest
from gateway.services import Services, services

router = APIRouter()
MAX_INPUTS = 2048


def _texts(body: EmbeddingRequest) -> list[str]:
    raw = body.input
    texts = [raw] if isinstance(raw, str) else raw
    if not texts:
        raise errors.InvalidRequest("'input' must not be empty.", param="input")
    if not all(isinstance(t, str) for t in texts):
        raise errors.UnsupportedParameter(
            "Token-id input is not supported by the local embedding model; send text.", param="input"
        )
    if len(texts) > MAX_INPUTS:
        raise errors.InvalidRequest(f"At most {MAX_INPUTS} inputs per request.", param="input")
    if any(not t for t in texts):
        raise errors.InvalidRequest("'input' must not contain empty strings.", param="input")
    return texts  # type: ignore[return-value]


@router.post("/v1/embeddings")
async def create_embeddings(
    body: EmbeddingRequest, request: Request, principal: Principal = Depends(client)
) -> Response:
    svc = services(request)
    ex = begin(svc, principal, "embeddings", body.model, request_id(request), stream=False)
    try:
        payload = await _embed(svc, ex, body)
    except BaseException as exc:
        ex.failed(exc)
        raise
    finally:
        await ex.finish()
    return Response(orjson.dumps(payload), media_type="application/json", headers=ex.headers)


async def _embed(svc: Services, ex: Exchange, body: EmbeddingRequest) -> dict[str, object]:
    texts = _texts(body)
    await ex.admit(sum(len(t) for t in texts) // 3 + len(texts), 0)
    vectors, tokens = await svc.router.embed(body.model, texts)
    ex.usage = Usage(tokens, 0)
    if body.dimensions is not None and body.dimensions != len(vectors[0]):
        raise errors.UnsupportedParameter(
            f"'{body.model}' produces {len(vectors[0])} dimensions; it cannot return {body.dimensions}.",
            param="dimensions",
        )
    data = []
    for i, vec in enumerate(vectors):
        emb: object = vec
        if body.encoding_format == "base64":
            emb = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
