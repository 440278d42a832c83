"""One request's bookkeeping, from admission to the log line.

An `Exchange` reserves the request's estimate against the caller's limits, collects what the
pipeline learns (prompt version, rail verdicts, usage, time to first token), and on `finish`
settles the reservation, writes the request log record and the metrics, and ends the span.
`finish` runs exactly once: at the end of a JSON answer, or when a stream ends however it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway import errors
from gateway.auth import Principal
from gateway.backends.base import Delta, Usage
from gateway.governance.limiter import Reservation
from gateway.governance.records import RailVerdict, RequestRecord
from gateway.governance.state import Governance
from gateway.governance.tracing import Span
from guardrails.verdict import Verdict

MAX_LOGGED_ANSWER_CHARS = 256 * 1024


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A cheap upper-leaning estimate for admission; `settle` charges the exact count."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // 3 + 4 * len(messages) + 3


@dataclass
class Exchange:
    gov: Governance
    principal: Principal
    endpoint: str
    model: str
    request_id: str
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    reservation: Reservation | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    usage: Usage | None = None
    streamed_chars: int = 0
    ttft_ms: float | None = None
    status: int = 200
    error_code: str | None = None
    messages: list[dict[str, Any]] | None = None
    answer: str | None = None
    completion_id: str | None = None
    span: Span | None = None
    _finished: bool = False

    def __post_init__(self) -> None:
        self.span = self.gov.tracing.start(
            f"{self.endpoint} {self.model}", kind="server", operation=self.endpoint,
            request_model=self.model, request_id=self.request_id,
        )

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.reservation.headers) if self.reservation else {}

    async def admit(self, prompt_tokens: int, max_tokens: int | None) -> None:
        self.reservation = await self.gov.admit(
            self.principal, model=self.model, prompt_tokens=prompt_tokens, max_tokens=max_tokens
        )

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, errors.GatewayError):
            self.status, self.error_code = exc.status, exc.code
        elif isinstance(exc, GeneratorExit | asyncio.CancelledError):
            self.status, self.error_code = 499, "client_closed"  # nginx's code for a client that left
            return
        else:
            self.status, self.error_code = 500, "internal_error"
        if self.span is not None:
            self.span.error(exc, self.error_code)

    async def watch(self, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
        """Pass a stream through, noting the first token's time, the text and the final usage."""
        pieces: list[str] = []
        # Only the log wants the text, and only up to a bound: an upstream that ignores max_tokens
        # must not grow this list for as long as the client keeps reading.
        keep = MAX_LOGGED_ANSWER_CHARS if self.gov.settings.log_content else 0
        try:
            async for delta in deltas:
                if delta.text:
                    if self.ttft_ms is None:
                        self.ttft_ms = (time.perf_counter() - self.started) * 1000.0
                        self.gov.metrics.first_token(self.model, self.ttft_ms / 1000.0)
                    if self.streamed_chars < keep:
                        pieces.append(delta.text[: keep - self.streamed_chars])
                    self.streamed_chars += len(delta.text)
                if delta.usage is not None:
                    self.usage = delta.usage
                yield delta
        except BaseException as exc:  # the relay turns it into an error event; the log keeps it
            self.failed(exc)
            raise
        finally:
            self.answer = "".join(pieces)

    async def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        usage = self.usage
        if usage is None:
            # A stream cut short (client gone, rail block, upstream error): charge what was seen.
            prompt = self.reservation.tokens if self.reservation else 0
            usage = Usage(prompt if self.streamed_chars else 0, self.streamed_chars // 3)
        cost = 0.0
        if self.reservation is not None:
            cost = await self.gov.settle(
                self.reservation, input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
            )
        for v in self.verdicts:
            self.gov.metrics.rail(v.rail, v.action)
        latency_s = time.perf_counter() - self.started
        self.gov.metrics.request(endpoint=self.endpoint, model=self.model, status=self.status, duration_s=latency_s)
        self.gov.log(RequestRecord(
            request_id=self.request_id, completion_id=self.completion_id, created_at=self.created_at,
            endpoint=self.endpoint, status=self.status,
            latency_ms=latency_s * 1000.0, key_id=self.principal.key_id, team=self.principal.team,
            model=self.model, prompt_name=self.prompt_name, prompt_version=self.prompt_version,
            rails=[RailVerdict.model_validate(v) for v in self.verdicts],
            input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
            cost=cost, ttft_ms=self.ttft_ms, stream=self.stream, error_code=self.error_code,
            messages=self.messages, answer=self.answer and self.answer[:MAX_LOGGED_ANSWER_CHARS],
        ))
        if self.span is not None:
            self.span.set(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                          status=self.status)
            self.span.end()

    async def close_stream(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Wrap an SSE body so that the exchange finishes when the stream does, however it ends."""
        try:
            async for chunk in body:
                yield chunk
        except BaseException as exc:
            self.failed(exc)
            raise
        finally:
            await self.finish()
