"""PII rail vs. presidio-research synthetic data: per-type precision/recall on held-out rows."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardrails.injection.metrics import wilson
from guardrails.injection.sources import DATA_ROOT
from guardrails.pii import find_entities
from guardrails.pii.entity import ALL_TYPES, NER_TYPES

PRESIDIO_PATH = DATA_ROOT / "presidio_research" / "synth_dataset_v2_first1000.json"
# Deterministic split: rows [0, 500) were used to tune patterns, [500, 1000) are only reported.
DEV_ROWS = slice(0, 500)
HELDOUT_ROWS = slice(500, 1000)

TYPE_MAP: dict[str, str] = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    "PERSON": "PERSON",  # spaCy NER (guardrails.pii.ner)
    "GPE": "LOCATION",
}
# A predicted LOCATION inside a street address is right, though the gold type is not GPE.
ALSO_CORRECT: dict[str, frozenset[str]] = {"LOCATION": frozenset({"STREET_ADDRESS"})}
EVAL_TYPES = ALL_TYPES | NER_TYPES
NOT_COVERED: dict[str, str] = {
    "STREET_ADDRESS": "NER finds the city/street name inside it (LOCATION), not the whole address",
    "ORGANIZATION": "needs NER",
    "DATE_TIME": "not treated as sensitive on its own",
    "TITLE": "needs NER",
    "AGE": "needs NER (bare numbers)",
    "NRP": "needs NER",
    "ZIP_CODE": "bare 5-digit numbers; too ambiguous without address parsing",
    "DOMAIN_NAME": "not treated as sensitive",
    "US_DRIVER_LICENSE": "state formats too ambiguous without context",
}


@dataclass
class TypeCounts:
    gold: int = 0
    pred: int = 0
    tp_recall: int = 0  # gold spans found
    tp_precision: int = 0  # predictions that hit a gold span of the same type
    exact: int = 0  # gold spans found with exact boundaries
    misses: list[str] = field(default_factory=list)
    false_pos: list[str] = field(default_factory=list)


def load_rows(rows: slice, path: Path = PRESIDIO_PATH) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return data[rows]


def evaluate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {t: TypeCounts() for t in TYPE_MAP.values()}
    unmapped_preds: Counter[str] = Counter()
    uncovered_gold: Counter[str] = Counter()
    for row in rows:
        text = row["full_text"]
        gold = [
            (TYPE_MAP[s["entity_type"]], s["start_position"], s["end_position"])
            for s in row["spans"]
            if s["entity_type"] in TYPE_MAP
        ]
        uncovered_gold.update(s["entity_type"] for s in row["spans"] if s["entity_type"] not in TYPE_MAP)
        also = [(s["entity_type"], s["start_position"], s["end_position"]) for s in row["spans"]]
        preds = find_entities(text, EVAL_TYPES)
        for t, s, e in gold:
            c = counts[t]
            c.gold += 1
            hit = [p for p in preds if p.type == t and p.start < e and s < p.end]
            if hit:
                c.tp_recall += 1
                if any(p.start == s and p.end == e for p in hit):
                    c.exact += 1
            else:
                c.misses.append(text[s:e])
        for p in preds:
            if p.type not in counts:
                unmapped_preds[p.type] += 1
                continue
            c = counts[p.type]
            c.pred += 1
            extra = ALSO_CORRECT.get(p.type, frozenset())
            if any(t == p.type and p.start < e and s < p.end for t, s, e in gold) or any(
                t in extra and p.start < e and s < p.end for t, s, e in also
            ):
                c.tp_precision += 1
            else:
                c.false_pos.append(p.value)
    per_type: dict[str, Any] = {}
    for t, c in counts.items():
        per_type[t] = {
            "gold": c.gold,
            "predicted": c.pred,
            "recall": wilson(c.tp_recall, c.gold).as_dict(),
            "precision": wilson(c.tp_precision, c.pred).as_dict(),
            "exact_boundary_recall": wilson(c.exact, c.gold).as_dict(),
            "example_misses": c.misses[:8],
            "example_false_positives": c.false_pos[:8],
        }
    return {
        "rows": len(rows),
        "per_type": per_type,
        "predictions_of_types_without_gold_labels": dict(unmapped_preds),
        "gold_types_not_covered": {t: {"count": n, "why": NOT_COVERED.get(t, "")} for t, n in uncovered_gold.items()},
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [f"PII rail on presidio-research synth v2, {result['rows']} held-out rows (overlap match, 95% Wilson)"]
    lines.append(f"{'type':<12} {'gold':>5} {'pred':>5}  {'precision':<32} {'recall':<32}")
    for t, r in result["per_type"].items():
        p, rc = wilson(r["precision"]["k"], r["precision"]["n"]), wilson(r["recall"]["k"], r["recall"]["n"])
        lines.append(f"{t:<12} {r['gold']:>5} {r['predicted']:>5}  {p.fmt():<32} {rc.fmt():<32}")
    nc = ", ".join(f"{t}({v['count']})" for t, v in sorted(result["gold_types_not_covered"].items()))
    lines.append(f"not covered (gold spans ignored): {nc}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    which = sys.argv[1] if len(sys.argv) > 1 else "dev"
    res = evaluate(load_rows(DEV_ROWS if which == "dev" else HELDOUT_ROWS))
    print(format_table(res))
    for t, r in res["per_type"].items():
        print(t, "misses:", r["example_misses"], "fp:", r["example_false_positives"])
    print(res["predictions_of_types_without_gold_labels"])
