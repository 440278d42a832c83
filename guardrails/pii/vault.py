"""Reversible masking: sensitive values become placeholders the model can still refer to.

A vault belongs to one caller/request. It must never be module-global or shared between
tenants: unmasking with someone else's vault would hand them the other tenant's values.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from guardrails.pii.detect import find_entities
from guardrails.pii.entity import PLACEHOLDER, Entity


class PlaceholderVault:
    """Bidirectional map between sensitive values and placeholders like ``<EMAIL_1>``.

    The same (type, value) always gets the same placeholder within one vault, so a model
    that sees ``<EMAIL_1>`` twice knows it is the same address. ``max_entries`` bounds memory
    for long-lived conversations; once full, new values are still masked but with a
    one-way ``<TYPE_REDACTED>`` placeholder that ``unmask`` leaves alone.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._max_entries = max_entries

    def placeholder_for(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        if len(self._by_value) >= self._max_entries:
            return f"<{entity_type}_REDACTED>"
        n = self._counters.get(entity_type, 0) + 1
        self._counters[entity_type] = n
        placeholder = f"<{entity_type}_{n}>"
        self._by_value[key] = placeholder
        self._by_placeholder[placeholder] = value
        return placeholder

    def value_for(self, placeholder: str) -> str | None:
        return self._by_placeholder.get(placeholder)

    def __len__(self) -> int:
        return len(self._by_value)

    def __contains__(self, placeholder: object) -> bool:
        return placeholder in self._by_placeholder


def mask(text: str, vault: PlaceholderVault, types: Collection[str] | None = None) -> str:
    """Replace every detected entity in ``text`` with its placeholder from ``vault``."""
    return mask_entities(text, find_entities(text, types), vault)


def mask_entities(text: str, entities: list[Entity], vault: PlaceholderVault) -> str:
    """``mask`` for entities already found in ``text`` (sorted, not overlapping)."""
    if not entities:
        return text
    parts: list[str] = []
    cursor = 0
    for e in entities:
        parts.append(text[cursor : e.start])
        parts.append(vault.placeholder_for(e.type, e.value))
        cursor = e.end
    parts.append(text[cursor:])
    return "".join(parts)


def unmask(text: str, vault: PlaceholderVault) -> str:
    """Restore placeholders this vault issued; anything else (even look-alikes) is kept."""

    def _restore(m: re.Match[str]) -> str:
        value = vault.value_for(m.group(0))
        return m.group(0) if value is None else value

    return PLACEHOLDER.sub(_restore, text)
