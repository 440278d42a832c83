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


def _alias_card(name: str, target: Route) -> dict[str, Any]:
    return {**_card(target), "id": name}


def _visible(principal: Principal, name: str) -> bool:
    return principal.models is None or name in principal.models


@router.get("/v1/models")
async def list_models(request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    svc = services(request)
    cards = [_card(r) for r in svc.router.routes.values() if _visible(principal, r.name)]
    cards += [_alias_card(a.name, svc.router.route(a.model)) for a in svc.settings.rag_routes
              if _visible(principal, a.name)]
    return {"object": "list", "data": cards}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    svc = services(request)
    if not _visible(principal, model_id):
        raise errors.model_not_found(model_id)  # the same 404 an unknown model gets
    alias = svc.settings.rag_route(model_id)
    if alias is not None:
        return _alias_card(alias.name, svc.router.route(alias.model))
    return _card(svc.router.route(model_id))
