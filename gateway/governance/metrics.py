"""Prometheus metrics on the gateway's own registry (never the process-global one).

Label values must come from closed sets: record a model name only once routing has accepted
it, or one client inventing model names would grow the registry without bound.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TTFT = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llmops_requests", "Requests answered, by endpoint, model and HTTP status.",
            ["endpoint", "model", "status"], registry=r,
        )
        self.duration = Histogram(
            "llmops_request_duration_seconds", "Time from request to the last byte of the answer.",
            ["endpoint", "model"], buckets=_LATENCY, registry=r,
        )
        self.ttft = Histogram(
            "llmops_time_to_first_token_seconds", "Time from request to the first streamed token.",
            ["model"], buckets=_TTFT, registry=r,
        )
        self.upstream = Histogram(
            "llmops_upstream_duration_seconds", "Duration of each model call (one attempt).",
            ["model"], buckets=_LATENCY, registry=r,
        )
        self.tokens = Counter("llmops_tokens", "Tokens by model and direction (input, output).",
                              ["model", "direction"], registry=r)
        self.cost = Counter("llmops_cost_usd", "Spend priced from the price table.", ["model"], registry=r)
        self.rails = Counter("llmops_rail_verdicts", "Rail outcomes by rail and action.", ["rail", "action"], registry=r)
        self.retries = Counter("llmops_retries", "Model call retries.", ["model"], registry=r)
        self.fallbacks = Counter("llmops_fallbacks", "Fallbacks from one model to another.",
                                 ["from_model", "to_model"], registry=r)
        self.cache = Counter("llmops_cache_lookups", "Cache lookups by cache (prompt, retrieval) and result.",
                             ["cache", "result"], registry=r)
        self.rate_limited = Counter("llmops_rate_limited", "Requests refused by a limit, by scope and limit kind.",
                                    ["scope", "limit"], registry=r)
        self.auth_failures = Counter("llmops_auth_failures", "Requests refused by authentication (401) or "
                                     "authorisation (403), by status.", ["status"], registry=r)
        self.log_written = Counter("llmops_request_log_written", "Request-log records stored.", registry=r)
        self.log_dropped = Counter("llmops_request_log_dropped", "Request-log records dropped (queue full).",
                                   registry=r)
        self.log_queue = Gauge("llmops_request_log_queue_depth", "Request-log records waiting to be written.",
                               registry=r)

    def request(self, *, endpoint: str, model: str | None, status: int, duration_s: float) -> None:
        self.requests.labels(endpoint, model or "", str(status)).inc()
        self.duration.labels(endpoint, model or "").observe(duration_s)

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(model).observe(seconds)

    def upstream_call(self, model: str, seconds: float) -> None:
        self.upstream.labels(model).observe(seconds)

    def usage(self, model: str, *, input_tokens: int, output_tokens: int, cost: float = 0.0) -> None:
        if input_tokens:
            self.tokens.labels(model, "input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(model, "output").inc(output_tokens)
        if cost:
            self.cost.labels(model).inc(cost)

    def rail(self, rail: str, action: str) -> None:
        self.rails.labels(rail, action).inc()

    def retry(self, model: str) -> None:
        self.retries.labels(model).inc()

    def fallback(self, from_model: str, to_model: str) -> None:
        self.fallbacks.labels(from_model, to_model).inc()

    def cache_lookup(self, cache: str, *, hit: bool) -> None:
        self.cache.labels(cache, "hit" if hit else "miss").inc()

    def auth_failure(self, status: int) -> None:
        self.auth_failures.labels(str(status)).inc()

    def rejected(self, scope: str, kind: str) -> None:
        self.rate_limited.labels(scope, kind).inc()

    def watch_log_queue(self, depth: Callable[[], int]) -> None:
        self.log_queue.set_function(depth)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
