"""Wire models that mirror OpenAI's request format (fields in OpenAI's documented order).

The edge accepts unknown fields as OpenAI does (`extra="allow"`); they are logged and passed
through to providers that may know them. Responses are built as plain dicts and serialised with
orjson: on the hot path a second pydantic pass would cost more than it checks.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger("gateway.protocol")
# The largest prompt version a request may name: what an INTEGER column holds in PostgreSQL (and
# SQLite); a larger number would fail in the database instead of as a 400.
MAX_PROMPT_VERSION = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")

    def unknown_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unencodable(value: Any) -> str | None:
    """What in a parsed JSON value cannot be sent on as JSON: an integer outside int64, or a lone
    UTF-16 surrogate (JSON's "\\ud800" escape parses, but no UTF-8 encoder takes it). Iterative, so
    that deeply nested input cannot reach the recursion limit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if _lone_surrogate(item):
                return "a string with a lone UTF-16 surrogate (invalid Unicode)"
        elif isinstance(item, int) and not isinstance(item, bool) and not INT64_MIN <= item <= INT64_MAX:
            return "an integer outside the 64-bit range"
    return None


class _Request(_Wire):
    """A whole generation or embedding request. Unknown fields are passed on to providers as JSON,
    and orjson (like most providers) refuses integers beyond 64 bits and invalid Unicode: that is
    the client's 400 here, not a server error at the upstream call."""

    @model_validator(mode="before")
    @classmethod
    def _int64(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                problem = _unencodable(value) or (_unencodable(key) and "an invalid field name")
                if problem:
                    raise ValueError(f"'{key}' holds {problem}")
        return data


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, text parts joined; non-text parts are refused upstream of here."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


def _finite(v: float | None) -> float | None:
    if v is not None and v != v:  # NaN never equals itself
        raise ValueError("must be a finite number")
    return v


class PromptReference(BaseModel):
    """Extension: render a registry prompt and put its messages before the request's."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    label: str | None = None
    version: int | None = Field(None, ge=1, le=MAX_PROMPT_VERSION)
    variables: dict[str, Any] = Field(default_factory=dict)


class RetrievalOptions(BaseModel):
    """Extension: retrieve context from a collection before calling the model."""

    model_config = ConfigDict(extra="forbid")
    collection: str = Field(min_length=1)
    top_k: int = Field(5, ge=1, le=100)
    filter: str | None = None


class ChatCompletionRequest(_Request):
    messages: list[ChatMessage] = Field(default_factory=list, description="May be empty with `prompt`.")
    model: str = Field(min_length=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    # -- gateway extensions (sent with the SDK's extra_body) --
    prompt: PromptReference | None = Field(None, description="Use a registry prompt by reference.")
    retrieval: RetrievalOptions | None = Field(None, description="Retrieval-augmented generation.")

    _finite_t = field_validator("temperature", "top_p", "frequency_penalty", "presence_penalty")(_finite)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v


class CompletionRequest(_Request):
    model: str = Field(min_length=1)
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)
    n: int | None = Field(None, ge=1, le=128)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    user: str | None = None

    _finite_t = field_validator("temperature", "top_p")(_finite)


class EmbeddingRequest(_Request):
    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None
