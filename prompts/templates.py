"""Sandboxed Jinja2 compilation and push-time template checks."""

from __future__ import annotations

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.environment import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from prompts.errors import InvalidPrompt
from prompts.models import PromptContent

# Templates are written by prompt authors but rendered inside the gateway, so
# they run in the immutable sandbox (no attribute escapes, no mutation of the
# caller's values) and StrictUndefined turns a typo into an error instead of
# an empty string silently sent to the model.
ENV = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    auto_reload=False,
)


def compile_template(source: str) -> Template:
    return ENV.from_string(source)


def _private_access(ast: nodes.Template) -> list[str]:
    # The sandbox already blocks these at render time; refusing them at push
    # tells the author immediately rather than on the first production call.
    found: list[str] = []
    for attr_node in ast.find_all(nodes.Getattr):
        if attr_node.attr.startswith("_"):
            found.append(attr_node.attr)
    for item_node in ast.find_all(nodes.Getitem):
        arg = item_node.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value.startswith("_"):
            found.append(arg.value)
    return found


def check_templates(content: PromptContent) -> None:
    """Raise InvalidPrompt unless every message compiles and uses only declared variables."""
    declared = set(content.variables)
    for index, message in enumerate(content.messages):
        where = f"message {index} ({message.role})"
        try:
            ast = ENV.parse(message.content)
            compile_template(message.content)
        except TemplateSyntaxError as exc:
            raise InvalidPrompt(f"{where}: template syntax error at line {exc.lineno}: {exc.message}") from exc
        private = _private_access(ast)
        if private:
            names = ", ".join(repr(p) for p in sorted(set(private)))
            raise InvalidPrompt(f"{where}: access to private attribute(s) {names} is not allowed")
        used = meta.find_undeclared_variables(ast) - set(ENV.globals)
        undeclared = sorted(used - declared)
        if undeclared:
            names = ", ".join(repr(n) for n in undeclared)
            raise InvalidPrompt(f"{where}: uses undeclared variable(s) {names}; declare them under 'variables'")
