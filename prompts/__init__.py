"""Prompt registry: versioned, labelled, sandboxed chat templates.

A pure library (no web framework): the gateway wires the REST API and the
chat "use by reference" on top of :class:`PromptRegistry`.
"""

from prompts.diff import MessageChange, ValueChange, VersionDiff, diff_versions
from prompts.errors import (
    Conflict,
    GateRefused,
    InvalidPrompt,
    LabelNotFound,
    NotFound,
    PromptError,
    PromptNotFound,
    RenderError,
    StorageBusy,
    VariableError,
    VariableIssue,
    VersionNotFound,
)
from prompts.files import FileSyncResult, PromptFile, SyncReport, load_prompt_file, sync_folder
from prompts.models import (
    LATEST,
    PRODUCTION,
    STAGING,
    ChatMessage,
    Gate,
    LabelMove,
    Message,
    ModelDefaults,
    MoveResult,
    PromptContent,
    PromptRef,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    RenderedPrompt,
    Variable,
    VersionSummary,
)
from prompts.registry import PromptRegistry
from prompts.rendering import CompiledPrompt, render

__all__ = [
    "LATEST", "PRODUCTION", "STAGING",
    "ChatMessage", "CompiledPrompt", "Conflict", "FileSyncResult", "Gate", "GateRefused", "InvalidPrompt",
    "LabelMove", "LabelNotFound", "Message", "MessageChange", "ModelDefaults", "MoveResult", "NotFound",
    "PromptContent", "PromptError", "PromptFile", "PromptNotFound", "PromptRef", "PromptRegistry", "PromptSpec",
    "PromptSummary", "PromptVersion", "PushResult", "RenderError", "RenderedPrompt", "StorageBusy", "SyncReport",
    "ValueChange", "Variable", "VariableError", "VariableIssue", "VersionDiff", "VersionNotFound", "VersionSummary",
    "diff_versions", "load_prompt_file", "render", "sync_folder",
]
