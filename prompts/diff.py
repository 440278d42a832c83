"""Differences between two versions: a unified text diff plus structured changes."""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from prompts.canonical import canonical_yaml
from prompts.models import Message, PromptVersion

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class MessageChange(BaseModel):
    model_config = _FROZEN

    change: Literal["added", "removed", "modified"]
    # Positions in the old and new message lists (None on the side it is absent from).
    old_index: int | None
    new_index: int | None
    before: Message | None
    after: Message | None


class ValueChange(BaseModel):
    model_config = _FROZEN

    before: JsonValue
    after: JsonValue


class VersionDiff(BaseModel):
    model_config = _FROZEN

    name: str
    from_version: int
    to_version: int
    identical: bool
    unified: str
    messages: list[MessageChange]
    variables_added: list[str]
    variables_removed: list[str]
    variables_changed: dict[str, ValueChange]
    defaults_changed: dict[str, ValueChange]


def _message_changes(old: tuple[Message, ...], new: tuple[Message, ...]) -> list[MessageChange]:
    # A sequence match (rather than index-by-index) keeps an inserted message
    # from showing up as "every later message modified".
    matcher = difflib.SequenceMatcher(a=[(m.role, m.content) for m in old], b=[(m.role, m.content) for m in new],
                                      autojunk=False)
    changes: list[MessageChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            changes.append(MessageChange(change="modified", old_index=i1 + k, new_index=j1 + k,
                                         before=old[i1 + k], after=new[j1 + k]))
        for i in range(i1 + paired, i2):
            changes.append(MessageChange(change="removed", old_index=i, new_index=None, before=old[i], after=None))
        for j in range(j1 + paired, j2):
            changes.append(MessageChange(change="added", old_index=None, new_index=j, before=None, after=new[j]))
    return changes


def _dict_changes(old: dict[str, JsonValue], new: dict[str, JsonValue]) -> dict[str, ValueChange]:
    return {
        key: ValueChange(before=old.get(key), after=new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    }


def diff_versions(old: PromptVersion, new: PromptVersion) -> VersionDiff:
    old_text = canonical_yaml(old).splitlines(keepends=True)
    new_text = canonical_yaml(new).splitlines(keepends=True)
    unified = "".join(difflib.unified_diff(
        old_text, new_text, fromfile=f"{old.name}@v{old.version}", tofile=f"{new.name}@v{new.version}",
    ))
    old_vars = old.content_dict()["variables"]
    new_vars = new.content_dict()["variables"]
    common = set(old_vars) & set(new_vars)
    return VersionDiff(
        name=new.name,
        from_version=old.version,
        to_version=new.version,
        identical=old.content_hash == new.content_hash,
        unified=unified,
        messages=_message_changes(old.messages, new.messages),
        variables_added=sorted(set(new_vars) - set(old_vars)),
        variables_removed=sorted(set(old_vars) - set(new_vars)),
        variables_changed=_dict_changes({k: old_vars[k] for k in common}, {k: new_vars[k] for k in common}),
        defaults_changed=_dict_changes(old.defaults.as_dict(), new.defaults.as_dict()),
    )
