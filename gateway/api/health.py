from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gateway.services import services

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: every configured model has at least one deployment that answers."""
    status = await services(request).router.ready()
    ok = all(status.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", "models": status}, status_code=200 if ok else 503)
