"""What the request log stores about one request, and how it is queried."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RailVerdict(BaseModel):
    """One rail's outcome; built from `guardrails.verdict.Verdict` objects as they are."""

    model_config = ConfigDict(extra="ignore", frozen=True, from_attributes=True)

    rail: str
    action: str
    score: float = 0.0
    latency_ms: float = 0.0
    detail: str = ""


class RequestRecord(BaseModel):
    """Handed to `RequestLog.enqueue` once a request is answered (or failed).

    `messages` and `answer` are raw here; they are masked in the writer, off the request path,
    and dropped unless `governance.log_content` is on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    completion_id: str | None = Field(default=None, description="The answer's id (chatcmpl-..., cmpl-...).")
    created_at: datetime = Field(description="When the request arrived (UTC).")
    endpoint: str
    status: int
    latency_ms: float
    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    rails: list[RailVerdict] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = Field(default=0.0, description="USD, from the price table.")
    ttft_ms: float | None = None
    stream: bool = False
    error_code: str | None = None
    messages: list[dict[str, Any]] | None = None
    answer: str | None = None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _utc(value)


class UsageEvent(BaseModel):
    """Tokens and cost spent outside the model call (rails, retrieval), for spend accounting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    key_id: str | None
    team: str | None
    tokens: int = 0
    cost: float = 0.0


class RequestQuery(BaseModel):
    """Filters of `GET /v1/admin/requests` and its export."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(default=None, max_length=128)
    completion_id: str | None = Field(default=None, max_length=64)
    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    status: int | None = Field(default=None, ge=100, le=599)
    endpoint: str | None = None
    prompt: str | None = Field(default=None, description="Prompt name, or name@version.")
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = None

    @field_validator("since", "until")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        if value is None or "@" not in value:
            return value
        version = value.partition("@")[2]
        if not (version.isascii() and version.isdigit() and len(version) <= 9):  # int() and the column take it
            raise ValueError("expected a prompt name, or name@<version number>")
        return value

    def prompt_filter(self) -> tuple[str | None, int | None]:
        if self.prompt is None:
            return None, None
        name, sep, version = self.prompt.partition("@")
        return name, int(version) if sep else None


class LoggedRequest(RequestRecord):
    """A stored row: the record plus its log id (what cursors point at)."""

    id: int
