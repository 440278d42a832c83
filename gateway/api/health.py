"""Liveness (`/health`) and readiness (`/ready`): models, and the components requests depend on.

`/ready` answers 200 only when every configured model has a deployment that answers and every
component answers: the database, Redis when configured (unless `governance.limits_fail_open`:
then requests are served without it, and it is reported but does not make the gateway unready),
and the retrieval store when retrieval is enabled. Each probe is bounded by `PROBE_TIMEOUT_S`,
so a hung dependency makes `/ready` slow by at most that much, never stuck. Nothing is cached:
the answer turns back to 200 on the first probe after the component recovers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from gateway.services import Services, services

router = APIRouter()
PROBE_TIMEOUT_S = 3.0


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Readiness: every model has a deployment that answers, every component answers."""
    svc = services(request)
    models, components = await asyncio.gather(svc.router.ready(), _components(svc))
    optional = {"redis"} if svc.governance.settings.limits_fail_open else set()
    ok = all(models.values()) and all(up for name, up in components.items() if name not in optional)
    body = {"status": "ready" if ok else "unavailable", "models": models, "components": components}
    return JSONResponse(body, status_code=200 if ok else 503)


async def _components(svc: Services) -> dict[str, bool]:
    probes: dict[str, Awaitable[object]] = {"database": asyncio.to_thread(_ping_database, svc.governance.engine)}
    if svc.governance.settings.redis_url:
        probes["redis"] = svc.governance.limiter.ready()
    if svc.rag is not None:
        probes["milvus"] = svc.rag.collections()  # also reopens a store that was down at start-up
    results = await asyncio.gather(*(_probe(p) for p in probes.values()))
    return dict(zip(probes, results, strict=True))


async def _probe(check: Awaitable[object]) -> bool:
    try:
        result = await asyncio.wait_for(check, PROBE_TIMEOUT_S)
    except Exception:  # a readiness probe answers, whatever the dependency does
        return False
    return result is not False


def _ping_database(engine: Engine) -> bool:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return True
