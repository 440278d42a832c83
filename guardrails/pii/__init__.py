"""Sensitive-data rail: regex + validator detection of PII and secrets, reversible masking."""

from guardrails.pii.detect import check, find_entities
from guardrails.pii.entity import ALL_TYPES, PERSONAL_TYPES, SECRET_TYPES, Entity
from guardrails.pii.vault import PlaceholderVault, mask, unmask

__all__ = [
    "ALL_TYPES",
    "PERSONAL_TYPES",
    "SECRET_TYPES",
    "Entity",
    "PlaceholderVault",
    "check",
    "find_entities",
    "mask",
    "unmask",
]
