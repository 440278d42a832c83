"""What a target returned for one item, in one shape for every kind of target (and for the cache)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Output:
    text: str | None = None
    finish_reason: str | None = None
    blocked: bool = False
    blocked_stage: str | None = None  # "input" (HTTP 400 content_policy_violation), "output" (content_filter), "check"
    citations: list[dict[str, Any]] = field(default_factory=list)  # chat with retrieval
    retrieved: list[dict[str, Any]] = field(default_factory=list)  # POST /v1/rag/search
    usage: dict[str, int] = field(default_factory=dict)
    model: str | None = None
    prompt_version: str | None = None  # x-prompt-version
    latency_ms: float = 0.0
    raw: dict[str, Any] | None = None  # e.g. a guardrails check's verdicts
    error: str | None = None  # the call failed after retries; the item is not scored
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Output:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
