"""REST for the prompt registry, admin keys only. Sync handlers: FastAPI runs them in its
thread pool, so the registry's blocking database I/O never stalls the event loop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import admin
from gateway.auth import Principal
from gateway.protocol import MAX_PROMPT_VERSION
from prompts.registry import PromptRegistry

router = APIRouter(prefix="/v1/prompts")


class VersionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[dict[str, Any]]
    variables: dict[str, Any] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


class LabelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=MAX_PROMPT_VERSION)
    reason: str | None = None


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = None


def registry(request: Request) -> PromptRegistry:
    return request.app.state.services.prompts  # type: ignore[no-any-return]


def actor(principal: Principal) -> str:
    return principal.name or principal.key_id


def _version_out(v: Any) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "hash": v.content_hash, "created_at": v.created_at.isoformat()}


@router.get("")
def list_prompts(request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
    return {"object": "list", "data": [p.model_dump(mode="json") for p in registry(request).list_prompts()]}


@router.post("/{name}/versions")
def push_version(name: str, body: VersionBody, request: Request, principal: Principal = Depends(admin)) -> JSONResponse:
    spec = {"name": name, **body.model_dump(exclude={"note"})}
    result = registry(request).push(spec, actor=actor(principal), note=body.note)
    return JSONResponse(_version_out(result.version), status_code=201 if result.created else 200)


@router.get("/{name}")
def get_prompt(name: str, request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
    reg = registry(request)
    versions = reg.list_versions(name)
    return {"name": name, "versions": [v.model_dump(mode="json") for v in versions], "labels": reg.labels(name)}


@router.get("/{name}/versions/{version}")
def get_version(
    name: str, request: Request, version: int = Path(ge=1, le=MAX_PROMPT_VERSION), _: Principal = Depends(admin)
) -> dict[str, Any]:
    return registry(request).get(name, version=version).model_dump(mode="json")


@router.get("/{name}/labels/{label}")
def get_label(name: str, label: str, request: Request, _: Principal = Depends(admin)) -> dict[str, Any]:
    return registry(request).get(name, label=label).model_dump(mode="json")


@router.put("/{name}/labels/{label}")
def move_label(
    name: str, label: str, body: LabelBody, request: Request, principal: Principal = Depends(admin)
) -> dict[str, Any]:
    # The registry applies its own gate (a passing eval run, when configured).
    return registry(request).move_label(name, label, body.version, actor=actor(principal), reason=body.reason).model_dump()


@router.post("/{name}/labels/{label}/rollback")
def rollback_label(
    name: str, label: str, body: RollbackBody, request: Request, principal: Principal = Depends(admin)
) -> dict[str, Any]:
    return registry(request).rollback(name, label, actor=actor(principal), reason=body.reason).model_dump()


@router.get("/{name}/diff")
def diff(
    name: str,
    request: Request,
    from_: int = Query(alias="from", ge=1, le=MAX_PROMPT_VERSION),
    to: int = Query(ge=1, le=MAX_PROMPT_VERSION),
    _: Principal = Depends(admin),
) -> dict[str, Any]:
    return registry(request).diff(name, from_, to).model_dump(mode="json")


@router.get("/{name}/history")
def history(
    name: str, request: Request, label: str | None = None, limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(admin),
) -> dict[str, Any]:
    moves = registry(request).history(name, label=label, limit=limit)
    return {"object": "list", "data": [m.model_dump(mode="json") for m in moves]}
