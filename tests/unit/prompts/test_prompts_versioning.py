"""Versions: monotonic numbers, content hashes, dedup and push-time validation."""

from __future__ import annotations

import hashlib
import json

import pytest
from prompt_test_helpers import make_spec

from prompts.canonical import canonical_json, content_hash
from prompts.errors import InvalidPrompt, PromptNotFound, VersionNotFound
from prompts.models import PromptSpec
from prompts.registry import PromptRegistry


def test_push_creates_version_one_then_increments(registry: PromptRegistry) -> None:
    first = registry.push(make_spec(system="v1"), actor="alice", note="initial")
    second = registry.push(make_spec(system="v2"), actor="bob")

    assert (first.created, first.version.version) == (True, 1)
    assert (second.created, second.version.version) == (True, 2)
    assert first.version.created_by == "alice"
    assert first.version.note == "initial"
    assert [v.version for v in registry.list_versions("greet")] == [1, 2]


def test_identical_push_returns_existing_version(registry: PromptRegistry) -> None:
    registry.push(make_spec(system="v1"), actor="alice")
    registry.push(make_spec(system="v2"), actor="alice")

    again = registry.push(make_spec(system="v1"), actor="carol")

    assert again.created is False
    assert again.version.version == 1
    assert again.version.created_by == "alice"  # the existing record, untouched
    assert len(registry.list_versions("greet")) == 2


def test_content_hash_is_sha256_of_canonical_content(registry: PromptRegistry) -> None:
    spec = PromptSpec.model_validate(make_spec())
    result = registry.push(spec, actor="alice")

    body = {
        "messages": [m.model_dump() for m in spec.messages],
        "variables": {
            "who": {"type": "string", "default": "there"},
            "question": {"type": "string", "description": "what the user asks"},
        },
        "defaults": {"model": "test-model", "temperature": 0.1},
    }
    expected = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert result.version.content_hash == expected == content_hash(spec)


def test_hash_ignores_key_order_but_not_whitespace(registry: PromptRegistry) -> None:
    spec = make_spec()
    reordered = {k: spec[k] for k in reversed(list(spec))}
    reordered["variables"] = dict(reversed(list(spec["variables"].items())))

    assert registry.push(spec, actor="a").version.version == 1
    assert registry.push(reordered, actor="a").created is False
    changed = registry.push(make_spec(system="You are helpful. "), actor="a")
    assert changed.created is True and changed.version.version == 2


def test_same_content_under_two_names_is_two_prompts(registry: PromptRegistry) -> None:
    a = registry.push(make_spec("alpha"), actor="a")
    b = registry.push(make_spec("beta"), actor="a")
    assert a.created and b.created
    assert a.version.version == b.version.version == 1
    assert [p.name for p in registry.list_prompts()] == ["alpha", "beta"]


def test_get_by_version_and_not_found_errors(registry: PromptRegistry) -> None:
    registry.push(make_spec(system="v1"), actor="a")
    got = registry.get("greet", version=1)
    assert got.messages[0].content == "v1"
    assert got.model_config["frozen"] is True

    with pytest.raises(VersionNotFound, match="greet.*no version 7"):
        registry.get("greet", version=7)
    with pytest.raises(PromptNotFound, match="'missing' not found"):
        registry.get("missing", version=1)
    with pytest.raises(PromptNotFound):
        registry.list_versions("missing")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "Bad Name"}, "invalid name"),
        ({"name": "-starts-with-dash"}, "invalid name"),
        ({"name": "x" * 129}, "invalid name"),
        ({"name": "greet\n"}, "invalid name"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": "{{ nope }}"}]}, "undeclared variable.*'nope'"),
        ({"messages": [{"role": "user", "content": "{% if %}"}]}, "syntax error"),
        ({"messages": [{"role": "user", "content": "{{ ''.__class__ }}"}]}, "private attribute"),
        ({"messages": [{"role": "user", "content": "{{ question['__dict__'] }}"}]}, "private attribute"),
        ({"variables": {"question": {"type": "integer", "default": "3"}}}, "default must be integer"),
        ({"variables": {"question": {"type": "integer", "default": True}}}, "default must be integer"),
        ({"variables": {"question": {"type": "uuid"}}}, "type"),
        ({"variables": {"not-an-identifier": {}}}, "invalid variable name"),
        ({"defaults": {"temprature": 0.3}}, "temprature"),
        ({"defaults": {"temperature": 5}}, "temperature"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_prompts_are_refused_with_clear_message(
    sqlite_registry: PromptRegistry, change: dict, message: str
) -> None:
    spec = make_spec()
    spec.update(change)
    if "variables" in change and "question" not in change["variables"]:
        spec["messages"] = [{"role": "user", "content": "static"}]
    with pytest.raises(InvalidPrompt, match=message):
        sqlite_registry.push(spec, actor="a")
    assert sqlite_registry.list_prompts() == []


def test_declared_but_unused_variables_are_allowed(sqlite_registry: PromptRegistry) -> None:
    spec = make_spec(variables={
        "who": {"type": "string"}, "question": {"type": "string"}, "spare": {"type": "integer", "default": 1},
    })
    assert sqlite_registry.push(spec, actor="a").created


def test_actor_is_required(sqlite_registry: PromptRegistry) -> None:
    with pytest.raises(InvalidPrompt, match="actor"):
        sqlite_registry.push(make_spec(), actor=" ")


def test_canonical_json_is_key_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json({"a": [1, {"c": 3, "d": 2}], "b": 1})
