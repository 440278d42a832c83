"""Pydantic models at the registry's edges: inputs, stored records, results."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from typing_extensions import TypedDict

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,127}$"
_NAME_RE = re.compile(NAME_PATTERN)
# Jinja2 resolves variables as Python identifiers; anything else could never be
# referenced from a template, so it is rejected at push time.
_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_VERSION_LIKE = re.compile(r"v?\d+")

# Pseudo-label resolving to the newest version; it is computed, so nobody may set it.
LATEST = "latest"
PRODUCTION = "production"
STAGING = "staging"

Role = Literal["system", "user", "assistant"]
VarType = Literal["string", "integer", "number", "boolean", "array", "object"]

_FROZEN = ConfigDict(extra="forbid", frozen=True)

# gate(name, version, label) raises to refuse a label move (e.g. no passing eval run).
Gate = Callable[[str, int, str], None]


def validate_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"invalid {what} {value!r}: must match {NAME_PATTERN} "
            "(lowercase letters, digits, '.', '_', '-'; at most 128 characters)"
        )
    return value


def validate_label(value: str) -> str:
    validate_name(value, "label")
    if value == LATEST:
        raise ValueError(f"label '{LATEST}' is reserved: it always resolves to the newest version")
    if _VERSION_LIKE.fullmatch(value):
        # "3" / "v3" are read as version numbers wherever a version-or-label is accepted.
        raise ValueError(f"label {value!r} looks like a version number; pick a name such as 'canary'")
    return value


def type_matches(var_type: str, value: Any) -> bool:
    # bool is a subclass of int in Python; JSON (and the callers) treat them apart.
    if var_type == "string":
        return isinstance(value, str)
    if var_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if var_type == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if var_type == "boolean":
        return isinstance(value, bool)
    if var_type == "array":
        return isinstance(value, (list, tuple))
    if var_type == "object":
        return isinstance(value, dict)
    return False


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    for name in ("boolean", "integer", "number", "string", "array", "object"):
        if type_matches(name, value):
            return name
    return type(value).__name__


class Message(BaseModel):
    model_config = _FROZEN

    role: Role
    content: str = Field(description="Jinja2 template, rendered in a sandbox")


class Variable(BaseModel):
    """A declared template variable; it is required unless it has a default."""

    model_config = _FROZEN

    type: VarType = "string"
    # None means "no default" (the variable is required): a null default would
    # render as the text "None", which is never what a prompt author wants.
    default: JsonValue = None
    description: str | None = None

    @model_validator(mode="after")
    def _default_has_declared_type(self) -> Variable:
        if self.default is not None and not type_matches(self.type, self.default):
            raise ValueError(
                f"default must be {self.type}, got {json_type_name(self.default)}"
            )
        return self

    @property
    def required(self) -> bool:
        return self.default is None


class ModelDefaults(BaseModel):
    """Default chat-completion parameters; the request may override them.

    Unknown keys are refused so a typo ("temprature") fails at push instead of
    being silently ignored at inference time.
    """

    model_config = _FROZEN

    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    response_format: dict[str, JsonValue] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        # Unset parameters are left out so adding a field here later does not
        # change the content hash of existing versions.
        return self.model_dump(mode="json", exclude_none=True)


class PromptContent(BaseModel):
    """The versioned part of a prompt: what the content hash covers."""

    model_config = _FROZEN

    messages: tuple[Message, ...] = Field(min_length=1)
    variables: dict[str, Variable] = Field(default_factory=dict)
    defaults: ModelDefaults = Field(default_factory=ModelDefaults)

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Variable]) -> dict[str, Variable]:
        for name in value:
            if not _VAR_RE.fullmatch(name):
                raise ValueError(
                    f"invalid variable name {name!r}: must be an identifier "
                    "(letters, digits, '_'; not starting with a digit)"
                )
        return value

    def content_dict(self) -> dict[str, Any]:
        """The canonical, JSON-ready form used for hashing, storage and diffs."""
        return {
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "variables": {
                name: {k: v for k, v in var.model_dump(mode="json").items() if v is not None}
                for name, var in self.variables.items()
            },
            "defaults": self.defaults.as_dict(),
        }

    def content(self) -> PromptContent:
        return PromptContent(messages=self.messages, variables=self.variables, defaults=self.defaults)


class PromptSpec(PromptContent):
    """What a caller pushes: a name plus content."""

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_name(value)


class PromptVersion(PromptSpec):
    """An immutable stored version."""

    version: int = Field(ge=1)
    content_hash: str
    created_at: datetime
    created_by: str
    note: str | None = None


class PushResult(BaseModel):
    model_config = _FROZEN

    version: PromptVersion
    # False when identical content already existed: the API answers 200, not 201.
    created: bool


class LabelMove(BaseModel):
    """One entry of a label's history."""

    model_config = _FROZEN

    id: int
    name: str
    label: str
    from_version: int | None
    to_version: int
    action: Literal["move", "rollback"]
    actor: str
    reason: str | None
    at: datetime


class MoveResult(BaseModel):
    model_config = _FROZEN

    name: str
    label: str
    version: int
    previous_version: int | None
    # False when the label already pointed at the version: nothing was recorded.
    moved: bool


class VersionSummary(BaseModel):
    model_config = _FROZEN

    name: str
    version: int
    content_hash: str
    created_at: datetime
    created_by: str
    note: str | None = None


class PromptSummary(BaseModel):
    model_config = _FROZEN

    name: str
    latest_version: int
    labels: dict[str, int]
    created_at: datetime
    updated_at: datetime


class ChatMessage(TypedDict):
    role: str
    content: str


class RenderedPrompt(BaseModel):
    model_config = _FROZEN

    name: str
    version: int
    messages: list[ChatMessage]
    defaults: dict[str, Any]


class PromptRef(BaseModel):
    """How a chat request names a prompt: by version, by label, or the production label."""

    model_config = _FROZEN

    name: str
    version: int | None = Field(default=None, ge=1)
    label: str | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> PromptRef:
        validate_name(self.name)
        if self.version is not None and self.label is not None:
            raise ValueError("give either version or label, not both")
        if self.label is not None and self.label != LATEST:
            validate_name(self.label, "label")
        return self
