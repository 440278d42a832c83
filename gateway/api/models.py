from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from gateway import errors
from gateway.api.deps import client
from gateway.auth import Principal
from gateway.routing import Route
from gateway.services import services

router = APIRouter()


def _card(route: Route) -> dict[str, Any]:
    return {"id": route.name, "object": "model", "created": route.created, "owned_by": route.owned_by}


def _visible(principal: Principal, name: str) -> bool:
    return principal.models is None or name in principal.models


@router.get("/v1/models")
async def list_models(request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    routes = services(request).router.routes.values()
    return {"object": "list", "data": [_card(r) for r in routes if _visible(principal, r.name)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    router_ = services(request).router
    if not _visible(principal, model_id):
        raise errors.model_not_found(model_id)  # the same 404 an unknown model gets
    return _card(router_.route(model_id))
