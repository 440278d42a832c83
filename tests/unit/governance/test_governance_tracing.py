"""Tracing: GenAI attributes on spans, nesting, content capture only when enabled, a free no-op."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.governance.settings import TracingSettings
from gateway.governance.tracing import NOOP_SPAN, Tracing


def memory(**settings: object) -> tuple[Tracing, InMemorySpanExporter]:
    tracing = Tracing(TracingSettings(exporter="memory", **settings))  # type: ignore[arg-type]
    assert isinstance(tracing.exporter, InMemorySpanExporter)
    return tracing, tracing.exporter


def test_request_rails_retrieval_prompt_and_model_call_spans() -> None:
    tracing, exported = memory()
    with tracing.span("gateway.request", endpoint="/v1/chat/completions", request_id="r1") as root:
        with tracing.span("rail", rail="pii", stage="input") as rail:
            rail.set(action="mask", score=0.9)
        with tracing.span("retrieval", collection="docs", top_k=4):
            pass
        with tracing.span("prompt.render", prompt="greet", version=3):
            pass
        with tracing.span("chat m1", kind="client", operation="chat", system="openai", request_model="m1",
                          max_tokens=64, temperature=0.2, top_p=0.9) as call:
            call.set(response_model="m1-2025", input_tokens=12, output_tokens=30, finish_reasons=("stop",))
        root.set(status=200)
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert set(spans) == {"gateway.request", "rail", "retrieval", "prompt.render", "chat m1"}
    model_call = spans["chat m1"]
    assert model_call.kind == SpanKind.CLIENT
    assert dict(model_call.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "m1",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.response.model": "m1-2025",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.response.finish_reasons": ("stop",),
    }
    assert dict(spans["rail"].attributes or {}) == {
        "llmops.rail": "pii", "llmops.stage": "input", "llmops.action": "mask", "llmops.score": 0.9,
    }
    root_id = spans["gateway.request"].context.span_id
    for name in ("rail", "retrieval", "prompt.render", "chat m1"):
        parent = spans[name].parent
        assert parent is not None and parent.span_id == root_id
    assert spans["gateway.request"].attributes["llmops.status"] == 200  # type: ignore[index]


def test_content_is_captured_only_when_enabled_and_masked() -> None:
    off, off_exported = memory()
    with off.span("chat m") as span:
        span.content("prompt", "my mail is ana@example.com")
    assert off_exported.get_finished_spans()[0].events == ()

    on = Tracing(TracingSettings(exporter="memory", capture_content=True), mask=lambda t: t.replace("ana", "***"))
    with on.span("chat m") as span:
        span.content("prompt", "my mail is ana@example.com")
        span.content("completion", "hello ana")
    assert isinstance(on.exporter, InMemorySpanExporter)
    events = on.exporter.get_finished_spans()[0].events
    assert [(e.name, dict(e.attributes or {})) for e in events] == [
        ("gen_ai.content.prompt", {"gen_ai.prompt": "my mail is ***@example.com"}),
        ("gen_ai.content.completion", {"gen_ai.completion": "hello ***"}),
    ]


def test_streams_end_spans_by_hand_under_an_explicit_parent() -> None:
    tracing, exported = memory()
    root = tracing.start("gateway.request")
    call = tracing.start("chat m", kind="client", parent=root, request_model="m")
    call.set(output_tokens=5)
    call.end()
    root.end()
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert spans["chat m"].parent.span_id == spans["gateway.request"].context.span_id  # type: ignore[union-attr]


def test_errors_mark_the_span() -> None:
    tracing, exported = memory()
    with pytest.raises(RuntimeError), tracing.span("chat m"):
        raise RuntimeError("upstream broke")
    with tracing.span("rail") as span:
        span.error(ValueError("x"), code="rail_failed")
    failed, marked = exported.get_finished_spans()
    assert failed.status.status_code == StatusCode.ERROR
    assert marked.attributes["error.type"] == "rail_failed"  # type: ignore[index]


def test_an_incoming_traceparent_parents_the_request_span() -> None:
    tracing, exported = memory()
    parent = Tracing.extract({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    with tracing.span("gateway.request", kind="server", parent=parent):
        pass
    span = exported.get_finished_spans()[0]
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"


def test_disabled_tracing_is_a_shared_no_op() -> None:
    tracing = Tracing(TracingSettings())
    assert not tracing.enabled
    with tracing.span("x", request_model="m") as span:
        assert span is NOOP_SPAN
        span.set(a=1)
        span.content("prompt", "text")
    assert tracing.span("y") is tracing.span("z")
    assert tracing.start("s") is NOOP_SPAN


def test_otlp_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        TracingSettings(exporter="otlp")
    tracing = Tracing(TracingSettings(exporter="otlp", endpoint="http://127.0.0.1:4318/v1/traces"))
    assert tracing.enabled
    tracing.shutdown()
