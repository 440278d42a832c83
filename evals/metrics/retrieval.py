"""Retrieval metrics against gold labels: hit@k, recall@k, MRR, context precision.

The ranked list is the `/v1/rag/search` result (retrieval targets) or the chat response's
`citations` (rag targets). Items list their relevant documents in `relevant` (ids, or sources with
`match_on: source`; a source also matches a path ending in "/" + it, so `routing.md` matches
`docs/routing.md`). A document retrieved twice (two chunks of one source) counts once, at its best rank. Context precision is the RAGAS definition with gold labels instead of an LLM
judge: the mean of precision@k over the ranks k that hold a relevant document (0 if none does).
"""

from __future__ import annotations

from typing import Any

from evals.dataset import Sample
from evals.metrics.base import Score
from evals.outputs import Output


def _relevant(sample: Sample, field: str) -> set[str] | None:
    value: Any = sample.get(field)
    if value is None or value == "" or value == []:
        return None
    return {str(v) for v in value} if isinstance(value, list | tuple) else {str(value)}


def _ranked(output: Output, match_on: str, relevant: set[str], k: int | None) -> list[str]:
    """Retrieved keys in rank order, deduplicated, each mapped onto the relevant entry it matches."""
    docs = output.retrieved or output.citations
    keys = [str(d.get(match_on)) for d in docs if isinstance(d, dict) and d.get(match_on) is not None][:k]
    out: list[str] = []
    for key in keys:
        hit = next((r for r in relevant if key == r or key.endswith("/" + r)), key)
        if hit not in out:
            out.append(hit)
    return out


def hit_at_k(sample: Sample, output: Output, *, k: int | None = None, field: str = "relevant",
             match_on: str = "id") -> Score:
    """1 if any relevant document is among the first k retrieved (k: all returned)."""
    relevant = _relevant(sample, field)
    if relevant is None:
        return Score(None, f"item has no '{field}'")
    ranked = _ranked(output, match_on, relevant, k)
    return Score(1.0 if relevant & set(ranked) else 0.0, {"retrieved": ranked[:10]})


def recall_at_k(sample: Sample, output: Output, *, k: int | None = None, field: str = "relevant",
                match_on: str = "id") -> Score:
    """Fraction of the relevant documents found among the first k."""
    relevant = _relevant(sample, field)
    if relevant is None:
        return Score(None, f"item has no '{field}'")
    ranked = _ranked(output, match_on, relevant, k)
    return Score(len(relevant & set(ranked)) / len(relevant))


def mrr(sample: Sample, output: Output, *, k: int | None = None, field: str = "relevant",
        match_on: str = "id") -> Score:
    """Reciprocal rank of the first relevant document (0 if none in the first k)."""
    relevant = _relevant(sample, field)
    if relevant is None:
        return Score(None, f"item has no '{field}'")
    for rank, doc in enumerate(_ranked(output, match_on, relevant, k), 1):
        if doc in relevant:
            return Score(1.0 / rank)
    return Score(0.0)


def context_precision(sample: Sample, output: Output, *, k: int | None = None, field: str = "relevant",
                      match_on: str = "id") -> Score:
    """Mean precision@i over the ranks i ≤ k holding a relevant document (RAGAS, with gold labels)."""
    relevant = _relevant(sample, field)
    if relevant is None:
        return Score(None, f"item has no '{field}'")
    ranked = _ranked(output, match_on, relevant, k)
    hits, total = 0, 0.0
    for i, doc in enumerate(ranked, 1):
        if doc in relevant:
            hits += 1
            total += hits / i
    return Score(total / hits if hits else 0.0)
