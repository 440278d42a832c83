"""Error hierarchy of the prompt registry.

Every error carries the HTTP status the gateway should answer with, so the
REST layer needs a single ``except PromptError as e: status = e.http_status``
instead of a mapping table that drifts from this module.
"""

from __future__ import annotations

from dataclasses import dataclass


class PromptError(Exception):
    """Base class: anything the registry refuses or cannot find."""

    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(PromptError):
    http_status = 404


class PromptNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"prompt '{name}' not found")
        self.name = name


class VersionNotFound(NotFound):
    def __init__(self, name: str, version: int) -> None:
        super().__init__(f"prompt '{name}' has no version {version}")
        self.name = name
        self.version = version


class LabelNotFound(NotFound):
    def __init__(self, name: str, label: str) -> None:
        super().__init__(f"prompt '{name}' has no label '{label}'")
        self.name = name
        self.label = label


class InvalidPrompt(PromptError):
    """The pushed definition (name, template, variables, defaults) is invalid."""


@dataclass(frozen=True)
class VariableIssue:
    variable: str
    problem: str  # "missing" | "type" | "unknown"
    detail: str


class VariableError(PromptError):
    """Render-time variables do not match the declared ones.

    All issues are collected so a caller fixes its request in one round trip;
    ``variable`` names the first one for callers that only show one.
    """

    def __init__(self, issues: list[VariableIssue]) -> None:
        if not issues:
            raise ValueError("VariableError needs at least one issue")
        super().__init__("invalid variables: " + "; ".join(i.detail for i in issues))
        self.issues = tuple(issues)
        self.variable = issues[0].variable


class RenderError(PromptError):
    """A template failed while rendering (sandbox violation, runtime error)."""


class Conflict(PromptError):
    http_status = 409


class GateRefused(Conflict):
    """A label-move gate (e.g. an evaluation check) refused the move."""


class StorageBusy(PromptError):
    """The database stayed locked/serialisation-failing after all retries."""

    http_status = 503
