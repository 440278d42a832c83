"""`/v1/fine_tuning/*`: OpenAI's fine-tuning jobs API over `finetune.FineTuning`, the dataset
builder, and the background task that serves each new fine-tuned model.

Wiring (all of it, in the app factory): `mount(app, settings, settings.finetune)` includes this
router, `files.router` and `feedback.router`, maps `FinetuneError` once, and extends the lifespan:
it opens the `FineTuning` facade (`app.state.finetune`) and starts `FinetunedRoutes`, which every
`route_poll_interval_s` reaps stale jobs and adds a route (`Router.add`) for each registered
fine-tuned model once the base model's Triton server reports it ready under its serving name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import Field

from finetune.errors import FinetuneError
from finetune.files import TRAINING
from finetune.flywheel import DatasetFilter, build_dataset
from finetune.records import JobCreate, RegisteredModel
from finetune.service import FineTuning
from finetune.settings import FinetuneSettings
from gateway import errors
from gateway.api.deps import admin, client
from gateway.auth import Principal
from gateway.backends.registry import BuildContext, build_backend
from gateway.config import ROOT, Settings, TritonDeployment
from gateway.protocol import MAX_PROMPT_VERSION
from gateway.routing import Deployment, Route, Router

log = logging.getLogger("gateway.finetune")
router = APIRouter(prefix="/v1/fine_tuning")
MAX_DATASET_EXAMPLES = 10_000_000


def facade(request: Request) -> FineTuning:
    ft = getattr(request.app.state, "finetune", None)
    if ft is None:
        raise errors.ServiceUnavailable("Fine-tuning is not configured on this gateway.")
    return ft  # type: ignore[no-any-return]


def owner_of(principal: Principal) -> str | None:
    """Client keys see their own files and jobs; admin keys see everyone's (None: no filter)."""
    return None if principal.is_admin else principal.key_id


def to_gateway_error(exc: FinetuneError) -> errors.GatewayError:
    return errors.from_status(exc.http_status, exc.message, param=exc.param, code=exc.code)


# ------------------------------------------------------------------------------------ jobs
@router.post("/jobs")
def create_job(body: JobCreate, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).create_job(body, owner=owner_of(principal)).model_dump()


@router.get("/jobs")
def list_jobs(request: Request, after: str | None = Query(None, max_length=64), limit: int = Query(20, ge=1, le=100),
              principal: Principal = Depends(client)) -> dict[str, Any]:
    # OpenAI's metadata filter: ?metadata[key]=value
    metadata = {k[len("metadata["):-1]: v for k, v in request.query_params.items()
                if k.startswith("metadata[") and k.endswith("]")}
    page = facade(request).jobs.list(owner=owner_of(principal), after=after, limit=limit, metadata=metadata or None)
    return page.model_dump()


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).jobs.get(job_id, owner=owner_of(principal)).model_dump()


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: str, request: Request, principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).jobs.cancel(job_id, owner=owner_of(principal)).model_dump()


@router.get("/jobs/{job_id}/events")
def job_events(job_id: str, request: Request, after: str | None = Query(None, max_length=64),
               limit: int = Query(20, ge=1, le=1000), principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).jobs.events(job_id, owner=owner_of(principal), after=after, limit=limit).model_dump()


@router.get("/jobs/{job_id}/checkpoints")
def job_checkpoints(job_id: str, request: Request, after: str | None = Query(None, max_length=64),
                    limit: int = Query(10, ge=1, le=100), principal: Principal = Depends(client)) -> dict[str, Any]:
    return facade(request).jobs.checkpoints(job_id, owner=owner_of(principal), after=after, limit=limit).model_dump()


# ------------------------------------------------------------------------------------ the flywheel
class DatasetRequest(DatasetFilter):
    filename: str = Field("flywheel.jsonl", min_length=1, max_length=256)
    # Bounded here so that a huge number is a 400, not a database error.
    prompt_version: int | None = Field(None, ge=1, le=MAX_PROMPT_VERSION)
    limit: int | None = Field(None, ge=1, le=MAX_DATASET_EXAMPLES, description="At most this many examples.")


@router.post("/datasets", status_code=201)
def build_training_file(body: DatasetRequest, request: Request, principal: Principal = Depends(admin)) -> dict[str, Any]:
    """Logged traffic + feedback → a stored training file (admin): the filters of DatasetFilter."""
    ft = facade(request)
    report = build_dataset(ft.engine, ft.feedback, DatasetFilter(**body.model_dump(exclude={"filename"})))
    stored = None
    if report.examples:
        stored = ft.files.create(body.filename, TRAINING, report.jsonl(), owner=None).model_dump()
    return {"object": "fine_tuning.dataset", "file": stored, "stats": report.stats()}


# ------------------------------------------------------------------------------------ serving
class FinetunedRoutes:
    """Routes for fine-tuned chat models: same Triton deployments as their base, new model name."""

    def __init__(self, ft: FineTuning, settings: Settings, router_: Router, context: BuildContext) -> None:
        self.ft = ft
        self.settings = settings
        self.router = router_
        self.context = context
        self._pending: dict[str, list[tuple[TritonDeployment, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    def _base_deployments(self, base: str) -> list[TritonDeployment]:
        for model in self.settings.models:
            if model.name == base:
                return [d for d in model.deployments if isinstance(d, TritonDeployment)]
        return []

    async def _try_add(self, m: RegisteredModel) -> bool:
        pending = self._pending.get(m.name)
        if pending is None:
            deps = [d.model_copy(update={"model": m.serving_name}) for d in self._base_deployments(m.base)]
            if not deps:
                log.warning("fine-tuned model %s: its base %s has no Triton deployment to serve it", m.name, m.base)
            pending = self._pending[m.name] = [(d, build_backend(d, self.context)) for d in deps]
        ready = [await backend.ready() for _, backend in pending]
        if not pending or not any(ready):
            return False  # Triton has not bound the folder yet: look again next round
        deployments = [
            Deployment(name=f"{m.name}[{i}:triton]", backend=backend,
                       timeout_s=dep.timeout_s or self.settings.routing.timeout_s, weight=dep.weight)
            for i, ((dep, backend), ok) in enumerate(zip(pending, ready, strict=True)) if ok
        ]
        for (_, backend), ok in zip(pending, ready, strict=True):
            if not ok:
                await backend.aclose()
        self.router.add(Route(name=m.name, deployments=deployments, owned_by="llmops", created=m.created_at))
        del self._pending[m.name]
        log.info("serving fine-tuned model %s (Triton model %s)", m.name, m.serving_name)
        return True

    async def sync(self) -> list[str]:
        """Add the routes that are missing and ready; returns the names added."""
        models = await run_in_threadpool(self.ft.models.list, "chat")
        return [m.name for m in models if m.name not in self.router.routes and await self._try_add(m)]

    async def _loop(self, interval_s: float) -> None:
        while True:
            try:
                await self.sync()
                for r in await run_in_threadpool(self.ft.reap):
                    log.warning("fine-tuning job %s of lost worker %s: %s", r.job_id, r.worker, r.action)
            except Exception:  # a database hiccup must not end the loop
                log.warning("fine-tuned model sync failed", exc_info=True)
            await asyncio.sleep(interval_s)

    def start(self, interval_s: float) -> None:
        self._task = asyncio.create_task(self._loop(interval_s), name="finetuned-routes")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._pending.values():
            for _, backend in pending:
                await backend.aclose()


def include_routes(app: FastAPI) -> None:
    """The three routers, and `FinetuneError` rendered as the gateway renders its own errors."""
    from gateway.api import feedback, files
    from gateway.app import error_response

    for module_router in (files.router, router, feedback.router):
        app.include_router(module_router)

    async def _finetune_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, FinetuneError)
        return error_response(to_gateway_error(exc))

    app.add_exception_handler(FinetuneError, _finetune_error)


def mount(app: FastAPI, settings: Settings, ft_settings: FinetuneSettings) -> None:
    """Add fine-tuning to an app built by `gateway.app.create_app` (see the module docstring)."""
    include_routes(app)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            svc = a.state.services
            ft = await run_in_threadpool(FineTuning, ft_settings, settings.database_url(), ROOT)
            a.state.finetune = ft
            routes = FinetunedRoutes(ft, settings, svc.router, BuildContext(settings, svc.http, {}))
            await routes.sync()  # models registered before this replica started are served at once
            routes.start(ft_settings.route_poll_interval_s)
            try:
                yield state
            finally:
                await routes.aclose()
                ft.close()

    app.router.lifespan_context = lifespan
