"""OpenTelemetry spans with the GenAI semantic conventions, behind a two-call API.

    tracing = Tracing(settings.governance.tracing)
    with tracing.span("rail", rail="pii", stage="input") as span:
        span.set(action="mask")

Short keyword names map to the GenAI attributes (`request_model` → `gen_ai.request.model`,
see ALIASES); other plain names land under `llmops.`; dotted names pass through as they are
(`**{"gen_ai.system": "openai"}`). Disabled (exporter `none`), `span` returns one shared no-op
object: no allocation, no SDK call. The provider is our own, never the process-global one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.governance.settings import TracingSettings

ALIASES = {
    "operation": "gen_ai.operation.name",
    "system": "gen_ai.system",
    "request_model": "gen_ai.request.model",
    "response_model": "gen_ai.response.model",
    "response_id": "gen_ai.response.id",
    "finish_reasons": "gen_ai.response.finish_reasons",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
    "error_type": "error.type",
}
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER}
SpanKindName = Literal["internal", "client", "server"]


def attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Our keyword names as OpenTelemetry attribute keys; None values are left out."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if value is None:
            continue
        name = key if "." in key else ALIASES.get(key, f"llmops.{key}")
        out[name] = list(value) if isinstance(value, tuple | frozenset | set) else value
    return out


class Span:
    """A live span; every method is cheap and safe to call on the no-op one."""

    __slots__ = ("_span", "_tracing")

    def __init__(self, span: trace.Span, tracing: Tracing) -> None:
        self._span = span
        self._tracing = tracing

    def set(self, **attrs: Any) -> None:
        self._span.set_attributes(attributes(attrs))

    def event(self, name: str, **attrs: Any) -> None:
        self._span.add_event(name, attributes(attrs))

    def content(self, role: Literal["prompt", "completion"], text: str) -> None:
        """Prompt or answer text, as a span event; dropped unless `capture_content` is on."""
        if self._tracing.capture_content:
            mask = self._tracing.mask
            self._span.add_event(f"gen_ai.content.{role}", {f"gen_ai.{role}": mask(text) if mask else text})

    def error(self, exc: BaseException, code: str | None = None) -> None:
        self._span.record_exception(exc)
        self._span.set_status(Status(StatusCode.ERROR, code or type(exc).__name__))
        self._span.set_attribute("error.type", code or type(exc).__name__)

    def end(self) -> None:
        self._span.end()

    @property
    def context(self) -> Context:
        return trace.set_span_in_context(self._span)


class _NoopSpan(Span):
    __slots__ = ()

    def __init__(self) -> None:
        pass

    def set(self, **attrs: Any) -> None:
        pass

    def event(self, name: str, **attrs: Any) -> None:
        pass

    def content(self, role: Literal["prompt", "completion"], text: str) -> None:
        pass

    def error(self, exc: BaseException, code: str | None = None) -> None:
        pass

    def end(self) -> None:
        pass

    @property
    def context(self) -> Context:
        return Context()


NOOP_SPAN = _NoopSpan()


class _NoopScope:
    __slots__ = ()

    def __enter__(self) -> Span:
        return NOOP_SPAN

    def __exit__(self, *_exc: object) -> None:
        return None


_NOOP_SCOPE = _NoopScope()


def _exporter(settings: TracingSettings) -> tuple[SpanExporter | None, bool]:
    """The exporter, and whether it may export inline (only the in-memory one)."""
    if settings.exporter == "none":
        return None, False
    if settings.exporter == "memory":
        return InMemorySpanExporter(), True
    if settings.exporter == "console":
        return ConsoleSpanExporter(), False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "tracing.exporter 'otlp' needs opentelemetry-exporter-otlp-proto-http; install it or use 'console'"
        ) from exc
    return OTLPSpanExporter(endpoint=settings.endpoint, headers=dict(settings.headers)), False


class Tracing:
    def __init__(
        self,
        settings: TracingSettings,
        *,
        mask: Callable[[str], str] | None = None,
        exporter: SpanExporter | None = None,
    ) -> None:
        """`exporter` overrides the configured one (tests); `mask` is applied to captured content."""
        self.capture_content = settings.capture_content
        self.mask = mask
        built, inline = (exporter, isinstance(exporter, InMemorySpanExporter)) if exporter else _exporter(settings)
        self.exporter = built
        self.enabled = built is not None
        self._provider: TracerProvider | None = None
        if built is not None:
            self._provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
            # Batching keeps export (stdout, HTTP) off the request path; memory exports inline for tests.
            processor = SimpleSpanProcessor(built) if inline else BatchSpanProcessor(built)
            self._provider.add_span_processor(processor)
            self._tracer = self._provider.get_tracer("llmops.gateway")

    def span(
        self, name: str, *, kind: SpanKindName = "internal", parent: Span | Context | None = None, **attrs: Any
    ) -> AbstractContextManager[Span]:
        """Context manager yielding a `Span`, current for its block (children nest under it)."""
        if not self.enabled:
            return _NOOP_SCOPE
        return self._scoped(name, kind, parent, attrs)

    @contextmanager
    def _scoped(self, name: str, kind: SpanKindName, parent: Span | Context | None, attrs: dict[str, Any]) -> Iterator[Span]:
        with self._tracer.start_as_current_span(
            name, context=_context(parent), kind=_KINDS[kind], attributes=attributes(attrs),
            record_exception=True, set_status_on_exception=True,
        ) as otel_span:
            yield Span(otel_span, self)

    def start(
        self, name: str, *, kind: SpanKindName = "internal", parent: Span | Context | None = None, **attrs: Any
    ) -> Span:
        """A span ended by hand (`span.end()`), for lifetimes that outlive a block: streams."""
        if not self.enabled:
            return NOOP_SPAN
        otel_span = self._tracer.start_span(name, context=_context(parent), kind=_KINDS[kind], attributes=attributes(attrs))
        return Span(otel_span, self)

    @staticmethod
    def extract(headers: Mapping[str, str]) -> Context:
        """The caller's trace context from a `traceparent` header, to parent the request span."""
        return TraceContextTextMapPropagator().extract(carrier=dict(headers))

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def _context(parent: Span | Context | None) -> Context | None:
    if isinstance(parent, Span):
        return parent.context
    return parent
