"""Prompt files (prompts/library/*.yaml) and folder sync."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prompts.errors import InvalidPrompt, PromptError
from prompts.models import Gate, PromptSpec, validate_label
from prompts.validation import format_validation_error, parse_spec

if TYPE_CHECKING:
    from prompts.registry import PromptRegistry

SUFFIXES = (".yaml", ".yml")


class PromptFile(PromptSpec):
    """A prompt file: a PromptSpec plus labels to point at the pushed version."""

    labels: list[str] = Field(default_factory=list)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return [validate_label(v) for v in value]

    def spec(self) -> PromptSpec:
        return PromptSpec(name=self.name, messages=self.messages, variables=self.variables, defaults=self.defaults)


class FileSyncResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    name: str | None = None
    status: Literal["created", "unchanged", "error"]
    version: int | None = None
    labels_moved: dict[str, int] = Field(default_factory=dict)
    error: str | None = None


class SyncReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    results: list[FileSyncResult]

    @property
    def ok(self) -> bool:
        return all(r.status != "error" for r in self.results)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


def load_prompt_file(path: str | Path) -> PromptFile:
    """Parse one file; the prompt name defaults to (and must equal) the file stem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidPrompt(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPrompt(f"{path}: expected a mapping at the top level")
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        # One prompt per file, found by its file name: a mismatch is almost
        # always a copy-paste that would overwrite another prompt.
        raise InvalidPrompt(f"{path}: name {data['name']!r} does not match the file name {path.stem!r}")
    try:
        prompt_file = PromptFile.model_validate(data)
    except ValidationError as exc:
        raise InvalidPrompt(f"{path}: {format_validation_error(exc)}") from exc
    try:
        parse_spec(prompt_file.spec())
    except InvalidPrompt as exc:
        raise InvalidPrompt(f"{path}: {exc}") from exc
    return prompt_file


def sync_file(registry: PromptRegistry, path: str | Path, *, actor: str, gate: Gate | None = None) -> FileSyncResult:
    """Push one file and apply its labels; errors are reported, not raised.

    Labels are applied only when the push created a version or the label does
    not exist yet. Re-syncing unchanged files therefore never undoes a manual
    rollback or promotion made since the last change to the file.
    """
    name: str | None = None
    version: int | None = None
    status: Literal["created", "unchanged", "error"] = "error"
    moved: dict[str, int] = {}
    try:
        prompt_file = load_prompt_file(path)
        name = prompt_file.name
        result = registry.push(prompt_file.spec(), actor=actor, note=f"sync {Path(path).name}")
        version = result.version.version
        status = "created" if result.created else "unchanged"
        existing = registry.labels(name)
        for label in prompt_file.labels:
            if result.created or label not in existing:
                move = registry.move_label(name, label, version, actor=actor,
                                           reason=f"sync {Path(path).name}", gate=gate)
                if move.moved:
                    moved[label] = version
    except PromptError as exc:
        return FileSyncResult(path=str(path), name=name, status="error", version=version,
                              labels_moved=moved, error=str(exc))
    return FileSyncResult(path=str(path), name=name, status=status, version=version, labels_moved=moved)


def prompt_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidPrompt(f"{path}: no such file or folder")
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)


def sync_folder(registry: PromptRegistry, path: str | Path, *, actor: str, gate: Gate | None = None) -> SyncReport:
    """Push every prompt file of a folder (or one file); one bad file does not stop the batch."""
    return SyncReport(results=[sync_file(registry, p, actor=actor, gate=gate) for p in prompt_files(path)])
