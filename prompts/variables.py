"""Render-time variable checking: defaults, required, types, unknown names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prompts.errors import VariableError, VariableIssue
from prompts.models import Variable, json_type_name, type_matches


def resolve_variables(specs: Mapping[str, Variable], provided: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the template context, or raise VariableError listing every problem."""
    provided = provided or {}
    issues: list[VariableIssue] = []
    context: dict[str, Any] = {}
    for name in provided:
        if name not in specs:
            issues.append(VariableIssue(name, "unknown", f"'{name}' is not a declared variable"))
    for name, spec in specs.items():
        if name in provided:
            value = provided[name]
            if not type_matches(spec.type, value):
                issues.append(
                    VariableIssue(name, "type", f"'{name}' must be {spec.type}, got {json_type_name(value)}")
                )
            context[name] = value
        elif spec.default is not None:
            # Defaults are shared between renders; the immutable sandbox stops
            # a template from mutating them, so no copy is needed.
            context[name] = spec.default
        else:
            issues.append(VariableIssue(name, "missing", f"'{name}' is required"))
    if issues:
        raise VariableError(issues)
    return context
