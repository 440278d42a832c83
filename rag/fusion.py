"""Rank fusion and diversity, as pure functions over ids and vectors (easy to check by hand)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over rankings of 1 / (k + rank of d), ranks from 1.

    Ties go to the document with the better single rank, then to the smaller id, so the order is
    deterministic. A document repeated within one ranking counts once, at its first rank.
    """
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, doc in enumerate(ranking, start=1):
            if doc in seen:
                continue
            seen.add(doc)
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
            best[doc] = min(best.get(doc, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lam: float) -> list[int]:
    """Maximal marginal relevance: pick, one at a time, the candidate maximising
    lam * sim(query, d) - (1 - lam) * max over picked p of sim(d, p).

    Vectors are expected L2-normalised (dot product = cosine). Returns indices into `candidates`
    in pick order; ties go to the earlier candidate, so the input order breaks them.
    """
    n = len(candidates)
    if n == 0 or k <= 0:
        return []
    cand = np.asarray(candidates, dtype=np.float32)
    relevance = cand @ np.asarray(query, dtype=np.float32)
    pairwise = cand @ cand.T
    picked: list[int] = []
    redundancy = np.full(n, -np.inf, dtype=np.float32)  # max similarity to anything picked so far
    available = np.ones(n, dtype=bool)
    while len(picked) < min(k, n):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        scores = lam * relevance - (1.0 - lam) * penalty
        scores = np.where(available, scores, -np.inf)
        best = int(np.argmax(scores))  # argmax returns the first maximum: earlier candidates win ties
        picked.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[best])
    return picked
