"""The small protocols every model backend implements.

A backend turns a provider-neutral `GenerationRequest` into a `Generation` (or a stream of
`Delta`s). Routing, retries and fallbacks live above it in `gateway.routing`; a backend makes one
attempt against one deployment and raises a `gateway.errors` exception when it fails.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation, already past rails and prompt rendering.

    Exactly one of `messages` (chat) and `prompt` (legacy completions) is set.
    `extra` carries OpenAI parameters that we pass through untouched to providers that know them
    (tools, tool_choice, response_format, logit_bias, ...).
    """

    model: str
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of a streamed answer. The last delta carries `finish_reason` and `usage`."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[dict[str, Any]] | None = None


@runtime_checkable
class ChatBackend(Protocol):
    """One deployment of a generative model."""

    async def complete(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]: ...

    async def ready(self) -> bool: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EmbeddingBackend(Protocol):
    async def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Return one vector per text and the number of input tokens."""
        ...

    async def ready(self) -> bool: ...

    async def aclose(self) -> None: ...
