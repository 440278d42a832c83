"""CLI operations as plain functions: registry + arguments in, data out.

The argparse layer (prompts.cli) only parses and prints; the gateway or tests
can call these directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prompts.diff import VersionDiff
from prompts.files import SyncReport
from prompts.models import LATEST, Gate, LabelMove, MoveResult, PromptSummary, PromptVersion, RenderedPrompt
from prompts.registry import PromptRegistry

_VERSION_REF = re.compile(r"^v?(\d+)$")


def resolve_ref(registry: PromptRegistry, name: str, ref: str | int | None) -> int:
    """'3', 'v3' or 3 is a version; anything else is a label ('latest' included)."""
    if ref is None:
        ref = LATEST
    if isinstance(ref, int):
        return ref
    match = _VERSION_REF.match(ref)
    if match:
        return int(match.group(1))
    return registry.resolve(name, ref)


def push(registry: PromptRegistry, path: str | Path, *, actor: str, gate: Gate | None = None) -> SyncReport:
    """Push one prompt file or every *.yaml in a folder."""
    return registry.sync_folder(path, actor=actor, gate=gate)


def list_prompts(registry: PromptRegistry) -> list[PromptSummary]:
    return registry.list_prompts()


def show(registry: PromptRegistry, name: str, ref: str | int | None = None) -> PromptVersion:
    return registry.get(name, version=resolve_ref(registry, name, ref))


def diff(registry: PromptRegistry, name: str, old: str | int, new: str | int) -> VersionDiff:
    return registry.diff(name, resolve_ref(registry, name, old), resolve_ref(registry, name, new))


def promote(
    registry: PromptRegistry, name: str, label: str, ref: str | int, *,
    actor: str, reason: str | None = None, gate: Gate | None = None,
) -> MoveResult:
    version = resolve_ref(registry, name, ref)
    return registry.move_label(name, label, version, actor=actor, reason=reason, gate=gate)


def rollback(
    registry: PromptRegistry, name: str, label: str, *,
    actor: str, reason: str | None = None, gate: Gate | None = None,
) -> MoveResult:
    return registry.rollback(name, label, actor=actor, reason=reason, gate=gate)


def history(registry: PromptRegistry, name: str, *, label: str | None = None, limit: int = 50) -> list[LabelMove]:
    return registry.history(name, label=label, limit=limit)


def render(
    registry: PromptRegistry, name: str, ref: str | int | None, variables: Mapping[str, Any] | None,
) -> RenderedPrompt:
    return registry.render(name, variables, version=resolve_ref(registry, name, ref))
