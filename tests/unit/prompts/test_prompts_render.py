"""Rendering: defaults, variable validation and the sandbox."""

from __future__ import annotations

import pytest
from prompt_test_helpers import make_spec

from prompts.errors import InvalidPrompt, RenderError, VariableError
from prompts.models import PromptRef
from prompts.registry import PromptRegistry
from prompts.rendering import render

TYPED_VARIABLES = {
    "text": {"type": "string"},
    "count": {"type": "integer", "default": 2},
    "ratio": {"type": "number", "default": 0.5},
    "flag": {"type": "boolean", "default": False},
    "items": {"type": "array", "default": []},
    "meta": {"type": "object", "default": {}},
}


@pytest.fixture
def typed(sqlite_registry: PromptRegistry) -> PromptRegistry:
    sqlite_registry.push({
        "name": "typed",
        "messages": [{
            "role": "user",
            "content": "{{ text }}|{{ count }}|{{ ratio }}|{{ flag }}|{{ items | join(',') }}|{{ meta | length }}",
        }],
        "variables": TYPED_VARIABLES,
        "defaults": {"model": "m", "max_tokens": 64, "stop": ["\n\n"], "response_format": {"type": "json_object"}},
    }, actor="a")
    return sqlite_registry


def test_render_applies_defaults_and_returns_model_parameters(typed: PromptRegistry) -> None:
    out = typed.render("typed", {"text": "hi"}, version=1)
    assert out.name == "typed" and out.version == 1
    assert out.messages == [{"role": "user", "content": "hi|2|0.5|False||0"}]
    assert out.defaults == {
        "model": "m", "max_tokens": 64, "stop": ["\n\n"], "response_format": {"type": "json_object"},
    }


def test_render_with_all_types(typed: PromptRegistry) -> None:
    out = typed.render("typed", {
        "text": "t", "count": 5, "ratio": 3, "flag": True, "items": ["a", "b"], "meta": {"k": 1},
    }, version=1)
    assert out.messages[0]["content"] == "t|5|3|True|a,b|1"


def test_missing_required_variable(typed: PromptRegistry) -> None:
    with pytest.raises(VariableError, match="'text' is required") as info:
        typed.render("typed", {}, version=1)
    assert info.value.variable == "text"
    assert info.value.issues[0].problem == "missing"
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("count", True, "'count' must be integer, got boolean"),  # bool is not an int
        ("count", 1.5, "'count' must be integer, got number"),
        ("ratio", False, "'ratio' must be number, got boolean"),
        ("text", 3, "'text' must be string, got integer"),
        ("flag", 1, "'flag' must be boolean, got integer"),
        ("items", "a,b", "'items' must be array, got string"),
        ("meta", ["x"], "'meta' must be object, got array"),
        ("text", None, "'text' must be string, got null"),
    ],
)
def test_mistyped_variable(typed: PromptRegistry, name: str, value: object, expected: str) -> None:
    variables = {"text": "ok", name: value}
    with pytest.raises(VariableError, match=expected) as info:
        typed.render("typed", variables, version=1)
    assert info.value.variable == name
    assert info.value.issues[0].problem == "type"


def test_unknown_variable(typed: PromptRegistry) -> None:
    with pytest.raises(VariableError, match="'colour' is not a declared variable") as info:
        typed.render("typed", {"text": "x", "colour": "red"}, version=1)
    assert info.value.variable == "colour"


def test_all_variable_problems_are_reported_together(typed: PromptRegistry) -> None:
    with pytest.raises(VariableError) as info:
        typed.render("typed", {"count": "2", "extra": 1}, version=1)
    assert {(i.variable, i.problem) for i in info.value.issues} == {
        ("extra", "unknown"), ("count", "type"), ("text", "missing"),
    }


def test_sandbox_blocks_attribute_escapes_at_push(sqlite_registry: PromptRegistry) -> None:
    spec = make_spec(messages=[{"role": "user", "content": "{{ ''.__class__.__mro__ }}"}], variables={})
    with pytest.raises(InvalidPrompt, match="__class__"):
        sqlite_registry.push(spec, actor="a")


@pytest.mark.parametrize(
    "template",
    [
        "{{ question | attr('__cl' ~ 'ass__') }}",  # dynamic name: only the sandbox can see it
        "{{ items.append(1) }}",  # the immutable sandbox refuses mutation
        "{{ items.pop() }}",
    ],
)
def test_sandbox_blocks_unsafe_operations_at_render(sqlite_registry: PromptRegistry, template: str) -> None:
    sqlite_registry.push({
        "name": "unsafe",
        "messages": [{"role": "user", "content": template}],
        "variables": {"question": {"type": "string", "default": "q"}, "items": {"type": "array", "default": [1]}},
    }, actor="a")
    with pytest.raises(RenderError, match="unsafe"):
        sqlite_registry.render("unsafe", {}, version=1)


def test_strict_undefined_inside_objects_is_a_render_error(sqlite_registry: PromptRegistry) -> None:
    sqlite_registry.push({
        "name": "obj",
        "messages": [{"role": "user", "content": "{{ meta.missing_key }}"}],
        "variables": {"meta": {"type": "object"}},
    }, actor="a")
    with pytest.raises(RenderError, match="missing_key"):
        sqlite_registry.render("obj", {"meta": {}}, version=1)


def test_returned_values_are_not_shared_with_the_cache(typed: PromptRegistry) -> None:
    first = typed.render("typed", {"text": "x"}, version=1)
    first.defaults["response_format"]["type"] = "text"
    first.messages.append({"role": "user", "content": "injected"})
    second = typed.render("typed", {"text": "x"}, version=1)
    assert second.defaults["response_format"] == {"type": "json_object"}
    assert len(second.messages) == 1


def test_pure_render_and_render_ref(sqlite_registry: PromptRegistry) -> None:
    version = sqlite_registry.push(make_spec(), actor="a").version
    sqlite_registry.move_label("greet", "production", 1, actor="a")
    direct = render(version, {"question": "how?"})
    via_ref = sqlite_registry.render_ref(PromptRef(name="greet", label="production"), {"question": "how?"})
    assert direct == via_ref
    assert direct.messages[1]["content"] == "Hello there, how?"
    with pytest.raises(ValueError, match="either version or label"):
        PromptRef(name="greet", version=1, label="production")
