"""RRF and MMR on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rag.fusion import mmr, rrf


def test_rrf_hand_checked() -> None:
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [d for d, _ in fused] == ["a", "c", "b", "d"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(1 / 63)


def test_rrf_small_k_rewards_agreement_less_than_top_rank() -> None:
    # k=1: x (rank 1 once) = 1/2 = 0.5; y (rank 2 twice) = 2/3 ≈ 0.667 → y first
    assert [d for d, _ in rrf([["x", "y"], ["z", "y"]], k=1)][:2] == ["y", "x"]


def test_rrf_ties_and_duplicates() -> None:
    # equal scores: both have best rank 1 → id order
    assert [d for d, _ in rrf([["b", "a"], ["a", "b"]])] == ["a", "b"]
    # a repeated id counts once, at its first rank
    assert dict(rrf([["a", "a", "b"]], k=60))["a"] == pytest.approx(1 / 61)
    assert dict(rrf([["a", "a", "b"]], k=60))["b"] == pytest.approx(1 / 63)
    assert rrf([]) == []


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_mmr_hand_checked() -> None:
    q = _unit(1, 0)
    a, b, c = _unit(0.9, 0.436), _unit(0.8, 0.6), _unit(0.8, -0.6)
    cands = np.stack([a, b, c])
    # λ=0.5. 1st: a (relevance 0.9). 2nd: b scores 0.4 - 0.5·cos(b,a)=0.4-0.49 < 0;
    # c scores 0.4 - 0.5·cos(c,a)=0.4-0.23 > 0 → c. 3rd: b.
    assert mmr(q, cands, k=3, lam=0.5) == [0, 2, 1]
    # λ=1: relevance only; b and c tie at 0.8 → the earlier one (b).
    assert mmr(q, cands, k=3, lam=1.0) == [0, 1, 2]
    assert mmr(q, cands, k=1, lam=0.5) == [0]


def test_mmr_drops_near_duplicates_before_diverse_results() -> None:
    q = _unit(1, 0.2)
    dup1, dup2, other = _unit(1, 0.1), _unit(1, 0.11), _unit(0.7, 0.7)
    # dup2 is the most relevant; dup1 is then nearly a copy of it, so the diverse one comes second
    assert mmr(q, np.stack([dup1, dup2, other]), k=2, lam=0.5) == [1, 2]
    assert mmr(q, np.stack([dup1, dup2, other]), k=2, lam=1.0) == [1, 0]
    assert mmr(q, np.zeros((0, 2)), k=3, lam=0.5) == []
