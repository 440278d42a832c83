"""Evaluation runs: `GET /v1/evals/runs`, `GET /v1/evals/runs/{id}` (client key), `POST /v1/evals/runs` (admin).

The store (`evals.store.EvalStore`) is built by the app factory and read from `app.state.evals`.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from evals.store import EvalStore, InvalidRun
from gateway import errors
from gateway.api.deps import admin, client
from gateway.auth import Principal

router = APIRouter()


def _store(request: Request) -> EvalStore:
    store = getattr(request.app.state, "evals", None)
    if store is None:
        raise errors.ServiceUnavailable("The evaluation runs store is not configured on this gateway.")
    return store  # type: ignore[no-any-return]


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except sa.exc.OperationalError as err:
        raise errors.ServiceUnavailable("The evaluation runs store is unavailable; try again.") from err


@router.get("/v1/evals/runs")
async def list_runs(
    request: Request,
    principal: Principal = Depends(client),
    suite: str | None = Query(None, max_length=128),
    prompt: str | None = Query(None, max_length=128, description="Runs with a target on this prompt."),
    version: str | None = Query(None, max_length=32, description="... at this prompt version."),
    status: Literal["passed", "failed", "error"] | None = None,
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    runs = await _call(_store(request).list_runs, suite=suite, prompt_name=prompt, prompt_version=version,
                       status=status, limit=limit + 1, offset=offset)
    return {"object": "list", "data": [r.model_dump(mode="json", exclude={"results"}) for r in runs[:limit]],
            "has_more": len(runs) > limit}


@router.get("/v1/evals/runs/{run_id}")
async def get_run(run_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    run = await _call(_store(request).get, run_id)
    if run is None:
        raise errors.NotFound(f"No evaluation run '{run_id}'.", param="run_id")
    return run.model_dump(mode="json")  # type: ignore[no-any-return]


@router.post("/v1/evals/runs", status_code=201)
async def record_run(
    request: Request, document: dict[str, Any] = Body(...), principal: Principal = Depends(admin)
) -> JSONResponse:
    """Record one suite's results document, as `llmops eval run --json` writes it (one entry of `suites`)."""
    try:
        run = await _call(_store(request).record, document)
    except InvalidRun as err:
        raise errors.InvalidRequest(str(err)) from None
    return JSONResponse(run.model_dump(mode="json", exclude={"results"}), status_code=201)
