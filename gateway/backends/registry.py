"""Turn configured deployments into backends. Built-in kinds register like any other would."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.config import (
    LitellmDeployment,
    LocalEmbeddingsDeployment,
    ModelSettings,
    Settings,
    TritonDeployment,
)
from gateway.routing import Deployment, Route, Router, RouterEvents


@dataclass
class BuildContext:
    settings: Settings
    http: aiohttp.ClientSession
    shared: dict[str, Any]  # objects several deployments share (tokenizers, embedding models)


Factory = Callable[[Any, BuildContext], Any]
_FACTORIES: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    def deco(fn: Factory) -> Factory:
        _FACTORIES[kind] = fn
        return fn

    return deco


def build_backend(dep: Any, ctx: BuildContext) -> Any:
    try:
        factory = _FACTORIES[dep.kind]
    except KeyError:
        raise ValueError(f"unknown deployment kind {dep.kind!r}; known: {sorted(_FACTORIES)}") from None
    return factory(dep, ctx)


@functools.lru_cache(maxsize=8)
def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


@register("triton")
def _triton(dep: TritonDeployment, ctx: BuildContext) -> Any:
    from gateway.backends.triton import TritonChatBackend

    tokenizer = load_tokenizer(str(ctx.settings.resolve_path(dep.tokenizer)))
    return TritonChatBackend(
        url=dep.url,
        model_name=dep.model,
        protocol=dep.protocol,
        tokenizer=tokenizer,
        timeout_s=dep.timeout_s or ctx.settings.routing.timeout_s,
        context_length=dep.context_length,
    )


@register("litellm")
def _litellm(dep: LitellmDeployment, ctx: BuildContext) -> Any:
    timeout = dep.timeout_s or ctx.settings.routing.timeout_s
    provider, _, upstream_model = dep.model.partition("/")
    if dep.fast_path and provider == "openai" and dep.api_base:
        from gateway.backends.openai_compat import OpenAICompatBackend
        from gateway.tokens import tiktoken_counter

        return OpenAICompatBackend(
            ctx.http, dep.api_base, upstream_model, dep.resolved_key(), tiktoken_counter(dep.model)
        )
    from gateway.backends.litellm_backend import LitellmBackend

    return LitellmBackend(dep.model, dep.api_base, dep.resolved_key(), timeout, dep.params)


@register("local-embeddings")
def _local_embeddings(dep: LocalEmbeddingsDeployment, ctx: BuildContext) -> Any:
    from gateway.backends.embeddings import LocalEmbeddingBackend

    key = f"embeddings:{dep.model_path}"
    if key not in ctx.shared:
        ctx.shared[key] = LocalEmbeddingBackend(dep.model_path, dep.batch_size)
    return ctx.shared[key]


def _timeout(dep: Any, settings: Settings) -> float:
    return float(getattr(dep, "timeout_s", None) or settings.routing.timeout_s)


def build_route(model: ModelSettings, ctx: BuildContext) -> Route:
    deployments = [
        Deployment(
            name=f"{model.name}[{i}:{dep.kind}]",
            backend=build_backend(dep, ctx),
            timeout_s=_timeout(dep, ctx.settings),
            weight=dep.weight,
        )
        for i, dep in enumerate(model.deployments)
    ]
    return Route(
        name=model.name,
        deployments=deployments,
        fallbacks=list(model.fallbacks),
        owned_by=model.owned_by,
        is_embedding=model.is_embedding,
    )


def build_router(settings: Settings, http: aiohttp.ClientSession, events: RouterEvents | None = None) -> Router:
    ctx = BuildContext(settings, http, {})
    return Router({m.name: build_route(m, ctx) for m in settings.models}, settings.routing, events)
