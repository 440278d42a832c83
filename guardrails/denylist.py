"""Deny-list / topic rail: configured phrases or regexes, case-insensitive, whole words."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from guardrails.verdict import Action, Verdict


class DenyRule(BaseModel):
    """One entry of the deny list (the shape used in gateway config files).

    Regex rules are combined into one alternation, so they must not use named groups,
    numbered back-references or inline global flags like ``(?i)`` (matching is already
    case-insensitive).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    pattern: str = Field(min_length=1)
    regex: bool = False  # False: literal phrase, whitespace-flexible, whole words only


class DenyListConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[DenyRule]
    action: Action = "block"


@dataclass(frozen=True, slots=True)
class DenyHit:
    rule: str
    matched: str


def _phrase_regex(phrase: str) -> str:
    words = phrase.split()
    body = r"\s+".join(re.escape(w) for w in words)
    # (?<!\w)/(?!\w) instead of \b so phrases that start/end with punctuation ("c++",
    # ".env") still get a boundary check that makes sense.
    return rf"(?<!\w){body}(?!\w)"


class DenyList:
    """Compiled once; one combined regex so cost does not grow per rule at match time."""

    def __init__(self, rules: Iterable[DenyRule | str], action: Action = "block", rail: str = "denylist") -> None:
        self.rules = [r if isinstance(r, DenyRule) else DenyRule(name=r, pattern=r) for r in rules]
        self.action = action
        self.rail = rail
        parts = []
        for i, rule in enumerate(self.rules):
            body = rule.pattern if rule.regex else _phrase_regex(rule.pattern)
            re.compile(body)  # fail at config time with the offending rule in the traceback
            parts.append(f"(?P<r{i}>{body})")
        self._regex = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    @classmethod
    def from_config(cls, config: DenyListConfig, rail: str = "denylist") -> DenyList:
        return cls(config.rules, config.action, rail)

    @staticmethod
    def _normalise(text: str) -> str:
        # Full-width letters and similar look-alikes would otherwise slip past the list.
        return text if text.isascii() else unicodedata.normalize("NFKC", text)

    def find(self, text: str) -> list[DenyHit]:
        if self._regex is None:
            return []
        hits = []
        for m in self._regex.finditer(self._normalise(text)):
            assert m.lastgroup is not None
            hits.append(DenyHit(self.rules[int(m.lastgroup[1:])].name, m.group(0)))
        return hits

    def check(self, text: str) -> Verdict:
        t0 = time.perf_counter()
        hits = self.find(text)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        if not hits:
            return Verdict(self.rail, "pass", 0.0, latency_ms)
        names = sorted({h.rule for h in hits})
        return Verdict(self.rail, self.action, 1.0, latency_ms, "matched: " + ",".join(names))
