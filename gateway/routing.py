"""Routing: pick a deployment, retry with backoff, cool down failing deployments, fall back.

For one public model the router tries its healthy deployments (weighted, least in-flight first),
retrying retryable failures up to `num_retries` times with exponential backoff; then each model in
`fallbacks`, in order. A deployment that fails `cooldown_failures` times in a row rests for
`cooldown_s`. A stream is retried and falls back only until its first delta reached the client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from gateway import errors
from gateway.backends.base import ChatBackend, Delta, EmbeddingBackend, Generation, GenerationRequest
from gateway.config import RoutingSettings

log = logging.getLogger("gateway.routing")
T = TypeVar("T")

RETRYABLE = (errors.UpstreamError, errors.ServiceUnavailable, errors.UpstreamTimeout, errors.RateLimited)


@dataclass(eq=False)
class Deployment:
    name: str
    backend: Any  # ChatBackend or EmbeddingBackend
    timeout_s: float
    weight: int = 1
    in_flight: int = 0
    consecutive_failures: int = 0
    cooldown_until: float = 0.0

    def cooling(self, now: float) -> bool:
        return now < self.cooldown_until


@dataclass(eq=False)
class Route:
    name: str
    deployments: list[Deployment]
    fallbacks: list[str] = field(default_factory=list)
    owned_by: str = "llmops"
    is_embedding: bool = False
    created: int = field(default_factory=lambda: int(time.time()))


class RouterEvents(Protocol):
    """What the router reports as it works (the gateway's Prometheus metrics implement it)."""

    def retry(self, model: str) -> None: ...

    def fallback(self, from_model: str, to_model: str) -> None: ...

    def upstream_call(self, model: str, seconds: float) -> None: ...


class _NoEvents:
    def retry(self, model: str) -> None:
        pass

    def fallback(self, from_model: str, to_model: str) -> None:
        pass

    def upstream_call(self, model: str, seconds: float) -> None:
        pass


class Router:
    def __init__(self, routes: Mapping[str, Route], settings: RoutingSettings, events: RouterEvents | None = None) -> None:
        self.routes = dict(routes)
        self._settings = settings
        self.events: RouterEvents = events or _NoEvents()

    def route(self, model: str) -> Route:
        route = self.routes.get(model)
        if route is None:
            raise errors.model_not_found(model)
        return route

    def add(self, route: Route) -> None:
        self.routes[route.name] = route

    # -- choosing -------------------------------------------------------------------------

    def _pick(self, route: Route, tried: set[Deployment]) -> Deployment:
        now = time.monotonic()
        healthy = [d for d in route.deployments if not d.cooling(now)]
        fresh = [d for d in healthy if d not in tried] or healthy
        if not fresh:
            raise errors.ServiceUnavailable(
                f"every deployment of model '{route.name}' is cooling down after failures"
            )
        least = min(d.in_flight / d.weight for d in fresh)
        candidates = [d for d in fresh if d.in_flight / d.weight == least]
        return random.choices(candidates, weights=[d.weight for d in candidates])[0]

    def _failed(self, route: Route, dep: Deployment, exc: Exception) -> None:
        dep.consecutive_failures += 1
        now = time.monotonic()
        # Never cool down the last healthy deployment: retries and fallbacks still need a target.
        others = any(d is not dep and not d.cooling(now) for d in route.deployments)
        if others and dep.consecutive_failures >= self._settings.cooldown_failures:
            dep.cooldown_until = now + self._settings.cooldown_s
            dep.consecutive_failures = 0
            log.warning("deployment %s cooling down for %.0fs after: %s", dep.name, self._settings.cooldown_s, exc)

    def _chain(self, model: str) -> list[Route]:
        first = self.route(model)
        return [first, *(self.route(name) for name in first.fallbacks)]

    # -- calling --------------------------------------------------------------------------

    async def _attempts(
        self, model: str, call: Callable[[Route, Deployment], Any]
    ) -> tuple[Any, Route]:
        last: errors.GatewayError | None = None
        for position, route in enumerate(self._chain(model)):
            if position:
                self.events.fallback(model, route.name)
                log.info("falling back from %s to %s after: %s", model, route.name, last)
            tried: set[Deployment] = set()
            backoff = self._settings.retry_backoff_s
            for attempt in range(self._settings.num_retries + 1):
                try:
                    dep = self._pick(route, tried)
                except errors.ServiceUnavailable as exc:
                    last = exc
                    break
                tried.add(dep)
                if attempt:
                    self.events.retry(route.name)
                dep.in_flight += 1
                t0 = time.perf_counter()
                try:
                    result = await asyncio.wait_for(call(route, dep), dep.timeout_s)
                except TimeoutError:
                    last = errors.UpstreamTimeout(
                        f"model '{route.name}' did not answer within {dep.timeout_s:g}s"
                    )
                    self._failed(route, dep, last)
                except RETRYABLE as exc:
                    last = exc
                    self._failed(route, dep, exc)
                else:
                    dep.consecutive_failures = 0
                    return result, route
                finally:
                    dep.in_flight -= 1
                    self.events.upstream_call(route.name, time.perf_counter() - t0)
                if attempt < self._settings.num_retries:
                    await asyncio.sleep(backoff)
                    backoff *= 2
        assert last is not None
        raise last

    async def complete(self, request: GenerationRequest) -> tuple[Generation, str]:
        """Return the generation and the public name of the model that produced it."""
        gen, route = await self._attempts(
            request.model, lambda route, dep: dep.backend.complete(replace(request, model=route.name))
        )
        return gen, route.name

    async def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int]:
        result, _ = await self._attempts(model, lambda route, dep: dep.backend.embed(texts))
        return result  # type: ignore[no-any-return]

    async def stream(self, request: GenerationRequest) -> tuple[AsyncIterator[Delta], str]:
        """Open a stream: retries and fallbacks cover everything up to the first delta.

        Returns an iterator that yields that first delta and then the rest; a failure after the
        first delta propagates to the caller, which ends the client's stream with an error event.
        """

        async def open_stream(route: Route, dep: Deployment) -> tuple[Delta, AsyncIterator[Delta], Deployment]:
            it = dep.backend.stream(replace(request, model=route.name)).__aiter__()
            try:
                first = await it.__anext__()
            except StopAsyncIteration:
                raise errors.UpstreamError("upstream closed the stream without an answer") from None
            return first, it, dep

        (first, rest, dep), route = await self._attempts(request.model, open_stream)

        async def chained() -> AsyncIterator[Delta]:
            dep.in_flight += 1
            try:
                yield first
                while True:
                    try:
                        # asyncio.timeout, not wait_for: wait_for would run the backend's generator in a
                        # task of its own, which a client leaving mid-stream does not close (upstream leak).
                        async with asyncio.timeout(dep.timeout_s):
                            delta = await rest.__anext__()
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise errors.UpstreamTimeout(
                            f"model '{route.name}' stalled mid-stream for {dep.timeout_s:g}s"
                        ) from None
                    yield delta
            except RETRYABLE as exc:
                self._failed(route, dep, exc)
                raise
            finally:
                dep.in_flight -= 1
                closer = getattr(rest, "aclose", None)
                if closer is not None:
                    await closer()

        return chained(), route.name

    def kind_check(self, model: str, embedding: bool) -> Route:
        route = self.route(model)
        if route.is_embedding != embedding:
            what = "an embedding model" if route.is_embedding else "a chat model"
            raise errors.InvalidRequest(f"'{model}' is {what}; it cannot serve this endpoint", param="model")
        return route

    async def ready(self) -> dict[str, bool]:
        async def one(dep: Deployment) -> bool:
            try:
                return bool(await asyncio.wait_for(dep.backend.ready(), 5))
            except Exception:  # readiness probes must answer, whatever the backend does
                return False

        deps = [(route.name, dep) for route in self.routes.values() for dep in route.deployments]
        results = await asyncio.gather(*(one(d) for _, d in deps))
        status: dict[str, bool] = {}
        for (name, _), ok in zip(deps, results, strict=True):
            status[name] = status.get(name, False) or ok
        return status

    async def aclose(self) -> None:
        for route in self.routes.values():
            for dep in route.deployments:
                await dep.backend.aclose()


ChatOrEmbedding = ChatBackend | EmbeddingBackend
