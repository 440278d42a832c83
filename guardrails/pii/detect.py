"""Run all recognizers and resolve overlaps into one sorted, non-overlapping entity list."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from guardrails.pii import ner, personal, secrets
from guardrails.pii.entity import ALL_TYPES, KNOWN_TYPES, NER_TYPES, Entity
from guardrails.pii.recognizer import Recognizer
from guardrails.verdict import Action, Verdict

RECOGNIZERS: tuple[Recognizer, ...] = secrets.RECOGNIZERS + personal.RECOGNIZERS


def _resolve(candidates: Iterable[Entity]) -> list[Entity]:
    # Greedy by confidence, then by length: a validated IBAN beats the "phone number" inside
    # it, and a PEM block swallows whatever digits happen to be in the base64.
    chosen: list[Entity] = []
    ranked = sorted(candidates, key=lambda e: (-e.score, -(e.end - e.start), e.start))
    for cand in ranked:
        if not any(cand.overlaps(c) for c in chosen):
            chosen.append(cand)
    chosen.sort(key=lambda e: (e.start, e.end))
    return chosen


def find_entities(text: str, types: Collection[str] | None = None) -> list[Entity]:
    """Detect sensitive spans in ``text``.

    ``types`` restricts the result to those entity types (see ``guardrails.pii.entity``);
    ``None`` means all the pattern types (PERSON and LOCATION, which need the NER model, only
    when named). The list is sorted by position and spans never overlap.
    """
    if types is not None:
        unknown = set(types) - KNOWN_TYPES
        if unknown:
            raise ValueError(f"unknown entity types: {sorted(unknown)}")
    wanted = ALL_TYPES if types is None else frozenset(types)
    candidates = [entity for recognizer in RECOGNIZERS if recognizer.type in wanted for entity in recognizer.find(text)]
    if wanted & NER_TYPES:
        candidates += ner.find(text, wanted & NER_TYPES)
    return _resolve(candidates)


def check(
    text: str,
    types: Collection[str] | None = None,
    action: Action = "mask",
    rail: str = "sensitive_data",
) -> Verdict:
    """Verdict form for the gateway: ``action`` when anything is found, else ``pass``.

    ``detail`` names the types and counts only, never the values, so it is safe to log.
    """
    t0 = time.perf_counter()
    entities = find_entities(text, types)
    return verdict_of(entities, (time.perf_counter() - t0) * 1000.0, action, rail)


def verdict_of(entities: list[Entity], latency_ms: float, action: Action = "mask", rail: str = "sensitive_data") -> Verdict:
    """The verdict for entities already found (see ``check``)."""
    if not entities:
        return Verdict(rail, "pass", 0.0, latency_ms)
    counts: dict[str, int] = {}
    for e in entities:
        counts[e.type] = counts.get(e.type, 0) + 1
    detail = ",".join(f"{k}:{n}" for k, n in sorted(counts.items()))
    return Verdict(rail, action, max(e.score for e in entities), latency_ms, detail)
