"""Labels: moves, history, rollback and gates."""

from __future__ import annotations

import pytest
from prompt_test_helpers import OpenRegistry, make_spec

from prompts.errors import Conflict, GateRefused, InvalidPrompt, LabelNotFound, PromptNotFound, VersionNotFound
from prompts.registry import PromptRegistry


@pytest.fixture
def three_versions(registry: PromptRegistry) -> PromptRegistry:
    for text in ("v1", "v2", "v3"):
        registry.push(make_spec(system=text), actor="author")
    return registry


def test_move_label_and_resolve(three_versions: PromptRegistry) -> None:
    reg = three_versions
    result = reg.move_label("greet", "production", 1, actor="alice", reason="first release")
    reg.move_label("greet", "staging", 3, actor="alice")

    assert (result.moved, result.previous_version, result.version) == (True, None, 1)
    assert reg.labels("greet") == {"production": 1, "staging": 3}
    assert reg.get("greet", label="production").version == 1
    assert reg.get("greet").version == 1  # no selector means the production label
    assert reg.get("greet", label="latest").version == 3
    assert reg.render("greet", {"question": "q"}, label="staging").messages[0]["content"] == "v3"
    summary = reg.list_prompts()[0]
    assert (summary.latest_version, summary.labels) == (3, {"production": 1, "staging": 3})


def test_every_move_is_recorded_in_history(three_versions: PromptRegistry) -> None:
    reg = three_versions
    reg.move_label("greet", "production", 1, actor="alice", reason="launch")
    reg.move_label("greet", "staging", 2, actor="bob")
    reg.move_label("greet", "production", 3, actor="carol", reason="eval passed")

    history = reg.history("greet")
    assert [(m.label, m.from_version, m.to_version, m.actor, m.reason, m.action) for m in history] == [
        ("production", 1, 3, "carol", "eval passed", "move"),
        ("staging", None, 2, "bob", None, "move"),
        ("production", None, 1, "alice", "launch", "move"),
    ]
    assert all(m.at.tzinfo is not None for m in history)
    assert [m.to_version for m in reg.history("greet", label="production")] == [3, 1]
    assert len(reg.history("greet", limit=1)) == 1


def test_moving_to_the_current_version_records_nothing(three_versions: PromptRegistry) -> None:
    reg = three_versions
    reg.move_label("greet", "production", 2, actor="alice")
    again = reg.move_label("greet", "production", 2, actor="bob")
    assert again.moved is False
    assert len(reg.history("greet")) == 1


def test_move_label_errors(three_versions: PromptRegistry) -> None:
    reg = three_versions
    with pytest.raises(VersionNotFound):
        reg.move_label("greet", "production", 4, actor="a")
    with pytest.raises(PromptNotFound):
        reg.move_label("nope", "production", 1, actor="a")
    with pytest.raises(InvalidPrompt, match="invalid label"):
        reg.move_label("greet", "Prod!", 1, actor="a")
    with pytest.raises(InvalidPrompt, match="reserved"):
        reg.move_label("greet", "latest", 1, actor="a")
    with pytest.raises(InvalidPrompt, match="looks like a version number"):
        reg.move_label("greet", "v2", 1, actor="a")
    with pytest.raises(LabelNotFound, match="no label 'canary'"):
        reg.get("greet", label="canary")
    assert reg.history("greet") == []


def test_rollback_returns_to_the_previous_version(three_versions: PromptRegistry) -> None:
    reg = three_versions
    reg.move_label("greet", "production", 1, actor="alice")
    reg.move_label("greet", "production", 3, actor="alice")

    result = reg.rollback("greet", "production", actor="oncall", reason="bad answers")

    assert (result.previous_version, result.version, result.moved) == (3, 1, True)
    assert reg.get("greet", label="production").version == 1
    last = reg.history("greet")[0]
    assert (last.action, last.from_version, last.to_version, last.actor, last.reason) == (
        "rollback", 3, 1, "oncall", "bad answers",
    )
    # "Before its last move": the rollback itself was the last move.
    assert reg.rollback("greet", "production", actor="oncall").version == 3


def test_rollback_without_an_earlier_version_is_a_conflict(three_versions: PromptRegistry) -> None:
    reg = three_versions
    with pytest.raises(LabelNotFound):
        reg.rollback("greet", "production", actor="a")
    reg.move_label("greet", "production", 2, actor="a")
    with pytest.raises(Conflict, match="no earlier version"):
        reg.rollback("greet", "production", actor="a")
    assert reg.labels("greet") == {"production": 2}


def test_gate_can_refuse_a_move(three_versions: PromptRegistry) -> None:
    reg = three_versions
    calls: list[tuple[str, int, str]] = []

    def gate(name: str, version: int, label: str) -> None:
        calls.append((name, version, label))
        if version == 3:
            raise RuntimeError("no passing evaluation run for v3")

    reg.move_label("greet", "production", 2, actor="a", gate=gate)
    with pytest.raises(GateRefused, match="no passing evaluation run for v3") as info:
        reg.move_label("greet", "production", 3, actor="a", gate=gate)

    assert info.value.http_status == 409
    assert calls == [("greet", 2, "production"), ("greet", 3, "production")]
    assert reg.labels("greet") == {"production": 2}
    assert len(reg.history("greet")) == 1


def test_gate_is_not_called_for_a_missing_version(three_versions: PromptRegistry) -> None:
    calls = []
    with pytest.raises(VersionNotFound):
        three_versions.move_label("greet", "production", 9, actor="a", gate=lambda *args: calls.append(args))
    assert calls == []


def test_gate_sees_the_rollback_target(three_versions: PromptRegistry) -> None:
    reg = three_versions
    reg.move_label("greet", "production", 1, actor="a")
    reg.move_label("greet", "production", 2, actor="a")
    seen = []
    reg.rollback("greet", "production", actor="a", gate=lambda *args: seen.append(args))
    assert seen == [("greet", 1, "production")]


def test_registry_wide_gate(db_url: str, open_registry: OpenRegistry) -> None:
    def gate(name: str, version: int, label: str) -> None:
        if label == "production":
            raise GateRefused(f"{name} v{version}: production needs an approved evaluation")

    reg = open_registry(db_url, gate=gate)
    reg.push(make_spec(), actor="a")
    reg.move_label("greet", "staging", 1, actor="a")
    with pytest.raises(GateRefused, match="approved evaluation"):
        reg.move_label("greet", "production", 1, actor="a")
