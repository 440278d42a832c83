"""Masking of logged content: the guardrails PII/secret detector, applied to every text field."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from guardrails.pii import PlaceholderVault, mask

log = logging.getLogger(__name__)

Mask = Callable[[str], str]
UNMASKABLE = "[content removed: masking failed]"
# Structural fields of OpenAI messages; everything else that is a string may carry user data.
_KEEP = frozenset({"role", "type", "id", "tool_call_id", "finish_reason"})


def pii_mask(text: str) -> str:
    """PII and secrets replaced by placeholders such as <EMAIL_1> (a fresh vault per text)."""
    return mask(text, PlaceholderVault())


def mask_text(text: str, masker: Mask) -> str:
    # Fail closed: content that could not be masked is not stored at all.
    try:
        return masker(text)
    except Exception:
        log.warning("request log: masking failed; content dropped", exc_info=True)
        return UNMASKABLE


def mask_value(value: Any, masker: Mask, key: str | None = None) -> Any:
    """`value` with every user-controlled string masked (message lists, content parts, tool calls)."""
    if isinstance(value, str):
        return value if key in _KEEP else mask_text(value, masker)
    if isinstance(value, list):
        return [mask_value(v, masker) for v in value]
    if isinstance(value, dict):
        return {k: mask_value(v, masker, k) for k, v in value.items()}
    return value
