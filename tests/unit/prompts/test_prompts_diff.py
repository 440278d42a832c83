"""Diffs between versions: unified text and structured changes."""

from __future__ import annotations

from prompt_test_helpers import make_spec

from prompts.registry import PromptRegistry


def test_structured_and_unified_diff(sqlite_registry: PromptRegistry) -> None:
    reg = sqlite_registry
    reg.push(make_spec(system="You are helpful.\nBe brief."), actor="a")
    new = make_spec(system="You are helpful.\nBe thorough.")
    new["messages"].append({"role": "assistant", "content": "Sure, {{ tone }}."})
    new["variables"] = {
        "who": {"type": "string", "default": "friend"},
        "question": {"type": "string", "description": "what the user asks"},
        "tone": {"type": "string", "default": "calm"},
    }
    new["defaults"] = {"model": "test-model", "temperature": 0.7, "max_tokens": 100}
    reg.push(new, actor="a")

    diff = reg.diff("greet", 1, 2)

    assert (diff.from_version, diff.to_version, diff.identical) == (1, 2, False)
    assert [(c.change, c.old_index, c.new_index) for c in diff.messages] == [("modified", 0, 0), ("added", None, 2)]
    before, after = diff.messages[0].before, diff.messages[1].after
    assert before is not None and before.content.endswith("brief.")
    assert after is not None and after.role == "assistant"
    assert diff.variables_added == ["tone"]
    assert diff.variables_removed == []
    assert diff.variables_changed["who"].before == {"type": "string", "default": "there"}
    assert diff.variables_changed["who"].after == {"type": "string", "default": "friend"}
    assert {k: (v.before, v.after) for k, v in diff.defaults_changed.items()} == {
        "temperature": (0.1, 0.7), "max_tokens": (None, 100),
    }
    assert diff.unified.startswith("--- greet@v1\n+++ greet@v2\n")
    assert "-    Be brief.\n" in diff.unified
    assert "+    Be thorough.\n" in diff.unified  # one template line per diff line
    assert "+  temperature: 0.7\n" in diff.unified


def test_removed_message_and_variable(sqlite_registry: PromptRegistry) -> None:
    reg = sqlite_registry
    reg.push(make_spec(), actor="a")
    reg.push({
        "name": "greet",
        "messages": [{"role": "user", "content": "{{ question }}"}],
        "variables": {"question": {"type": "string"}},
    }, actor="a")

    diff = reg.diff("greet", 1, 2)

    assert [(c.change, c.old_index, c.new_index) for c in diff.messages] == [
        ("modified", 0, 0), ("removed", 1, None),
    ]
    assert diff.variables_removed == ["who"]
    assert set(diff.defaults_changed) == {"model", "temperature"}


def test_diff_of_a_version_with_itself_is_empty(sqlite_registry: PromptRegistry) -> None:
    sqlite_registry.push(make_spec(), actor="a")
    diff = sqlite_registry.diff("greet", 1, 1)
    assert diff.identical and diff.unified == "" and diff.messages == []
    assert not (diff.variables_added or diff.variables_removed or diff.variables_changed or diff.defaults_changed)
