"""Entity types and the span record shared by detection and masking."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

EMAIL: Final = "EMAIL"
PHONE: Final = "PHONE"
CREDIT_CARD: Final = "CREDIT_CARD"
IBAN: Final = "IBAN"
US_SSN: Final = "US_SSN"
UK_NINO: Final = "UK_NINO"
IP_ADDRESS: Final = "IP_ADDRESS"
AWS_ACCESS_KEY: Final = "AWS_ACCESS_KEY"
AWS_SECRET_KEY: Final = "AWS_SECRET_KEY"
GITHUB_TOKEN: Final = "GITHUB_TOKEN"
SLACK_TOKEN: Final = "SLACK_TOKEN"
OPENAI_KEY: Final = "OPENAI_KEY"
GOOGLE_API_KEY: Final = "GOOGLE_API_KEY"
JWT: Final = "JWT"
PRIVATE_KEY: Final = "PRIVATE_KEY"
GENERIC_SECRET: Final = "GENERIC_SECRET"
# Found by a local NER model (``guardrails.pii.ner``), only where a rail asks for them by name.
PERSON: Final = "PERSON"
LOCATION: Final = "LOCATION"

PERSONAL_TYPES: Final[frozenset[str]] = frozenset({EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, UK_NINO, IP_ADDRESS})
SECRET_TYPES: Final[frozenset[str]] = frozenset(
    {
        AWS_ACCESS_KEY,
        AWS_SECRET_KEY,
        GITHUB_TOKEN,
        SLACK_TOKEN,
        OPENAI_KEY,
        GOOGLE_API_KEY,
        JWT,
        PRIVATE_KEY,
        GENERIC_SECRET,
    }
)
# What the vault puts in place of a value (``<EMAIL_1>``): groups are the type and the number.
PLACEHOLDER: Final = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")

# The pattern types: what a rail detects when it names no types.
ALL_TYPES: Final[frozenset[str]] = PERSONAL_TYPES | SECRET_TYPES
NER_TYPES: Final[frozenset[str]] = frozenset({PERSON, LOCATION})
KNOWN_TYPES: Final[frozenset[str]] = ALL_TYPES | NER_TYPES


@dataclass(frozen=True, slots=True)
class Entity:
    """A detected span: ``text[start:end] == value``."""

    type: str
    start: int
    end: int
    value: str
    score: float

    def overlaps(self, other: Entity) -> bool:
        return self.start < other.end and other.start < self.end
