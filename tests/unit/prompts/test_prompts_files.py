"""Prompt files and folder sync, including the shipped prompts/library."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prompts.errors import InvalidPrompt
from prompts.files import load_prompt_file
from prompts.registry import PromptRegistry

LIBRARY = Path(__file__).resolve().parents[3] / "prompts" / "library"


def write(folder: Path, name: str, data: dict | str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def simple(text: str, labels: list[str] | None = None) -> dict:
    data: dict = {
        "messages": [{"role": "user", "content": text + " {{ q }}"}],
        "variables": {"q": {"type": "string"}},
    }
    if labels is not None:
        data["labels"] = labels
    return data


def test_shipped_library_prompts_are_valid_and_render(sqlite_registry: PromptRegistry) -> None:
    report = sqlite_registry.sync_folder(LIBRARY, actor="ci")
    assert report.ok, report
    assert {r.name for r in report.results} >= {"support-answer", "rag-answer"}

    support = sqlite_registry.render("support-answer", {"product": "Acme Router", "question": "How to reset?"})
    assert "Acme Router" in support.messages[0]["content"]
    assert support.messages[-1] == {"role": "user", "content": "How to reset?"}

    rag = sqlite_registry.render("rag-answer", {"context": "[doc-1] The sky is blue.", "question": "Sky colour?"})
    assert "[doc-1] The sky is blue." in rag.messages[0]["content"]
    assert rag.messages[-1]["content"] == "Sky colour?"
    assert sqlite_registry.get("rag-answer").variables["context"].type == "string"


def test_sync_is_idempotent(sqlite_registry: PromptRegistry, tmp_path: Path) -> None:
    write(tmp_path, "alpha", simple("A", labels=["production", "staging"]))
    write(tmp_path, "beta", simple("B"))

    first = sqlite_registry.sync_folder(tmp_path, actor="ci")
    second = sqlite_registry.sync_folder(tmp_path, actor="ci")

    assert [(r.name, r.status, r.version) for r in first.results] == [("alpha", "created", 1), ("beta", "created", 1)]
    assert first.results[0].labels_moved == {"production": 1, "staging": 1}
    assert [(r.name, r.status, r.version) for r in second.results] == [
        ("alpha", "unchanged", 1), ("beta", "unchanged", 1),
    ]
    assert second.results[0].labels_moved == {}
    assert len(sqlite_registry.history("alpha")) == 2

    write(tmp_path, "alpha", simple("A2", labels=["production"]))
    third = sqlite_registry.sync_folder(tmp_path, actor="ci")
    assert [(r.status, r.version) for r in third.results] == [("created", 2), ("unchanged", 1)]
    assert sqlite_registry.labels("alpha") == {"production": 2, "staging": 1}


def test_resync_does_not_undo_a_manual_rollback(sqlite_registry: PromptRegistry, tmp_path: Path) -> None:
    write(tmp_path, "alpha", simple("A", labels=["production"]))
    sqlite_registry.sync_folder(tmp_path, actor="ci")
    write(tmp_path, "alpha", simple("A2", labels=["production"]))
    sqlite_registry.sync_folder(tmp_path, actor="ci")
    sqlite_registry.rollback("alpha", "production", actor="oncall")

    report = sqlite_registry.sync_folder(tmp_path, actor="ci")

    assert report.results[0].status == "unchanged"
    assert sqlite_registry.labels("alpha") == {"production": 1}


def test_bad_files_are_reported_without_stopping_the_batch(sqlite_registry: PromptRegistry, tmp_path: Path) -> None:
    write(tmp_path, "a-good", simple("A"))
    write(tmp_path, "b-undeclared", {"messages": [{"role": "user", "content": "{{ nope }}"}]})
    write(tmp_path, "c-broken-yaml", "messages: [unclosed")
    write(tmp_path, "d-wrong-name", {**simple("D"), "name": "other"})
    write(tmp_path, "e-bad-label", simple("E", labels=["latest"]))
    write(tmp_path, "f-good", simple("F"))
    (tmp_path / "notes.txt").write_text("not a prompt")

    report = sqlite_registry.sync_folder(tmp_path, actor="ci")

    statuses = {Path(r.path).stem: r.status for r in report.results}
    assert statuses == {
        "a-good": "created", "b-undeclared": "error", "c-broken-yaml": "error",
        "d-wrong-name": "error", "e-bad-label": "error", "f-good": "created",
    }
    errors = {Path(r.path).stem: r.error for r in report.results if r.error}
    assert "undeclared variable(s) 'nope'" in errors["b-undeclared"]
    assert "cannot read YAML" in errors["c-broken-yaml"]
    assert "does not match the file name" in errors["d-wrong-name"]
    assert "reserved" in errors["e-bad-label"]
    assert not report.ok and report.count("created") == 2
    assert [p.name for p in sqlite_registry.list_prompts()] == ["a-good", "f-good"]


def test_sync_single_file_and_missing_path(sqlite_registry: PromptRegistry, tmp_path: Path) -> None:
    path = write(tmp_path, "solo", simple("S"))
    assert sqlite_registry.sync_folder(path, actor="ci").results[0].status == "created"
    with pytest.raises(InvalidPrompt, match="no such file"):
        sqlite_registry.sync_folder(tmp_path / "absent", actor="ci")


def test_load_prompt_file_defaults_name_to_stem(tmp_path: Path) -> None:
    loaded = load_prompt_file(write(tmp_path, "from-stem", simple("X", labels=["staging"])))
    assert (loaded.name, loaded.labels) == ("from-stem", ["staging"])
