"""Turning caller input into validated objects, with InvalidPrompt on failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from prompts.errors import InvalidPrompt
from prompts.models import PromptSpec, validate_label
from prompts.templates import check_templates


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "prompt"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_spec(data: PromptSpec | Mapping[str, Any]) -> PromptSpec:
    """Validate a push body into a PromptSpec, raising InvalidPrompt on any problem."""
    try:
        spec = data if isinstance(data, PromptSpec) else PromptSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidPrompt(f"invalid prompt: {format_validation_error(exc)}") from exc
    check_templates(spec)
    return spec


def check_label(label: str) -> str:
    try:
        return validate_label(label)
    except ValueError as exc:
        raise InvalidPrompt(str(exc)) from exc


def check_actor(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidPrompt("actor is required (who is making this change)")
    return actor
