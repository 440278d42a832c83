"""Compiled prompts and rendering to chat messages."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError
from jinja2.environment import Template

from prompts.errors import RenderError
from prompts.models import ChatMessage, PromptVersion, RenderedPrompt
from prompts.templates import compile_template
from prompts.variables import resolve_variables


class CompiledPrompt:
    """A version with its templates compiled once; immutable, so safely cached forever."""

    __slots__ = ("version", "_templates", "_defaults", "_nested_defaults")

    def __init__(self, version: PromptVersion) -> None:
        self.version = version
        self._templates: tuple[tuple[str, Template], ...] = tuple(
            (m.role, compile_template(m.content)) for m in version.messages
        )
        self._defaults = version.defaults.as_dict()
        self._nested_defaults = any(isinstance(v, (dict, list)) for v in self._defaults.values())

    def render(self, variables: Mapping[str, Any] | None = None) -> RenderedPrompt:
        context = resolve_variables(self.version.variables, variables)
        messages: list[ChatMessage] = []
        for role, template in self._templates:
            try:
                content = template.render(context)
            except TemplateError as exc:  # includes SecurityError and UndefinedError
                raise RenderError(
                    f"prompt '{self.version.name}' v{self.version.version}: {role} message failed to render: {exc}"
                ) from exc
            except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
                raise RenderError(
                    f"prompt '{self.version.name}' v{self.version.version}: {role} message failed to render: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            messages.append({"role": role, "content": content})
        # A copy per render: callers merge request overrides into it.
        defaults = copy.deepcopy(self._defaults) if self._nested_defaults else dict(self._defaults)
        # model_construct skips re-validation of data built right here: this is the hot path.
        return RenderedPrompt.model_construct(
            name=self.version.name, version=self.version.version, messages=messages, defaults=defaults
        )


def render(version: PromptVersion, variables: Mapping[str, Any] | None = None) -> RenderedPrompt:
    """Render one version without any cache (the registry caches compiled prompts)."""
    return CompiledPrompt(version).render(variables)
