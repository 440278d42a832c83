"""The app factory: settings in, a FastAPI app with every backend built and warmed out."""

from __future__ import annotations

import gc
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from evals.store import ENV_URL as EVALS_ENV_URL
from evals.store import EvalStore, prompt_gate
from gateway import errors
from gateway.api import admin, chat, completions, embeddings, guardrails, health, metrics, models, prompts
from gateway.api import evals as evals_api
from gateway.api import finetune as finetune_api
from gateway.api import rag as rag_api
from gateway.auth import KeyStore
from gateway.backends.embeddings import LocalEmbeddingBackend
from gateway.backends.registry import build_router
from gateway.config import ROOT, Settings
from gateway.governance.settings import GovernanceSettings
from gateway.governance.state import Governance
from gateway.middleware import BodyLimitMiddleware, BodyTimeoutMiddleware, RequestIdMiddleware
from gateway.routing import Router
from gateway.services import Services
from gateway.tokens import use_offline_tiktoken
from guardrails.engine import Guardrails
from prompts.errors import PromptError, VariableError
from prompts.registry import PromptRegistry
from rag.embedder import MiniLMEmbedder
from rag.errors import RagError
from rag.service import RagService

log = logging.getLogger("gateway")


def error_response(err: errors.GatewayError) -> Response:
    return Response(err.json(), status_code=err.status, media_type="application/json", headers=err.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    msg = first.get("msg", "Invalid request body.")
    if first.get("type") == "json_invalid":
        return "We could not parse the JSON body of your request.", None
    return (f"Invalid value for '{param}': {msg}" if param else f"Invalid request body: {msg}"), param


class AuthDenials:
    """401s and 403s are counted (`llmops_auth_failures`) and logged, with the client's address and
    never the key, at most one line a second: a key-guessing client must not flood the log."""

    def __init__(self, every_s: float = 1.0) -> None:
        self.every_s = every_s
        self._last = -math.inf
        self._quiet = 0

    def record(self, request: Request, exc: errors.GatewayError) -> None:
        gov = getattr(request.app.state, "governance", None)
        if gov is not None:
            gov.metrics.auth_failure(exc.status)
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._quiet += 1
            return
        host = request.client.host if request.client else "-"
        more = f" ({self._quiet} more since the last line)" if self._quiet else ""
        log.warning("auth: %d %s %s from %s: %s%s", exc.status, request.method, request.url.path, host,
                    exc.message, more)
        self._last, self._quiet = now, 0


def install_error_handlers(app: FastAPI) -> None:
    denials = AuthDenials()

    @app.exception_handler(errors.GatewayError)
    async def _gateway(request: Request, exc: errors.GatewayError) -> Response:
        if isinstance(exc, errors.AuthenticationError | errors.PermissionDenied):
            denials.record(request, exc)
        return error_response(exc)

    @app.exception_handler(PromptError)
    async def _prompt(_: Request, exc: PromptError) -> Response:
        param = f"prompt.variables.{exc.variable}" if isinstance(exc, VariableError) else None
        return error_response(errors.from_status(exc.http_status, exc.message, param=param))

    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> Response:
        return error_response(rag_api.gateway_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        message, param = _validation_message(exc)
        return error_response(errors.InvalidRequest(message, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        err = errors.from_status(exc.status_code, str(exc.detail))
        err.status = exc.status_code  # 405, 413, ... keep their own status
        return error_response(err)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(errors.GatewayError("The server had an error processing your request."))


def open_prompt_registry(settings: Settings, gate: Callable[[str, int, str], None] | None) -> PromptRegistry:
    registry = PromptRegistry(
        settings.database_url(),
        redis_url=settings.storage.redis_url,
        poll_interval_s=settings.prompts.poll_interval_s,
        gate=gate,
    )
    library = settings.prompts.library_dir
    if settings.prompts.sync_on_start and library and settings.resolve_path(library).is_dir():
        report = registry.sync_folder(settings.resolve_path(library), actor="llmops-startup")
        for result in report.results:
            if result.error:
                log.error("prompt file %s not synced: %s", result.path, result.error)
    return registry


def open_rag(settings: Settings, router: Router) -> RagService | None:
    """Retrieval over the gateway's own loaded MiniLM (one copy of the model per process)."""
    if not settings.rag.enabled:
        return None
    name, local = next(
        ((r.name, d.backend) for r in router.routes.values() if r.is_embedding for d in r.deployments
         if isinstance(d.backend, LocalEmbeddingBackend)),
        (None, None),
    )
    embedder = MiniLMEmbedder(local.model, lock=local.lock) if local is not None else None
    owner = f"http://{settings.server.host}:{settings.server.port}"
    return RagService(settings.rag, embedder=embedder, owner_url=owner, embedding_model=name)


def governance_settings(settings: Settings) -> GovernanceSettings:
    """Governance shares the gateway's database and Redis unless configured apart."""
    gov = settings.governance
    return gov.model_copy(update={
        "database_url": gov.database_url or settings.database_url(),
        "redis_url": gov.redis_url or settings.storage.redis_url,
    })


def create_app(settings: Settings, *, insecure: bool = False) -> FastAPI:
    use_offline_tiktoken()
    # Built here, not in the lifespan, so a bad policy or NeMo config stops start-up with its name.
    rails = Guardrails(settings.guardrails, ROOT)
    data_dir = settings.resolve_path(settings.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gov = Governance.build(governance_settings(settings), data_dir=data_dir)
        await gov.start()
        # Per-attempt deadlines are the router's (asyncio.wait_for); the session only bounds connecting.
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        router = build_router(settings, http, events=gov.metrics)
        await rails.warm()
        store = EvalStore.for_data_dir(data_dir, os.environ.get(EVALS_ENV_URL) or settings.database_url())
        gate = None
        if settings.prompts.require_passing_eval:
            gate = prompt_gate(store, settings.prompts.require_passing_eval, labels=settings.prompts.gated_labels)
        rag = open_rag(settings, router)
        svc = Services(
            settings=settings,
            router=router,
            keys=KeyStore(settings.client_keys(), settings.admin_keys()),
            http=http,
            prompts=open_prompt_registry(settings, gate),
            guardrails=rails,
            governance=gov,
            evals=store,
            rag=rag,
            insecure=insecure,
        )
        app.state.services = svc
        app.state.governance = gov
        app.state.evals = store
        app.state.rag = rag
        if rag is not None:
            await rag.start()  # never raises: a store that is down answers 503 per request
        # Start-up leaves ~650k long-lived objects (NeMo, torch, transformers); a full collection
        # over them stalled every request in flight for 1.6 s on a loaded 2-core machine (~1 ms
        # once frozen; BENCHMARKS.md). Objects made per request are still collected as usual.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await svc.aclose()

    app = FastAPI(
        title="llmops gateway",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (chat, completions, embeddings, models, health, prompts, guardrails, admin, evals_api, rag_api):
        app.include_router(module.router)
    app.include_router(metrics.public_router if settings.governance.metrics_public else metrics.router)
    finetune_api.mount(app, settings, settings.finetune)  # files, fine-tuning jobs, feedback
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.server.max_body_bytes)
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.server.body_timeout_s)  # wraps BodyLimit's own reads
    app.add_middleware(RequestIdMiddleware)
    return app
