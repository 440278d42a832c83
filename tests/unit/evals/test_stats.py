"""Paired significance: exact values by hand, and the notes that say when n is too small."""

from __future__ import annotations

import pytest

from evals.stats import binom_two_sided, compare, mcnemar, min_discordant, paired_bootstrap, sign_test


def test_exact_binomial_and_mcnemar_by_hand() -> None:
    assert binom_two_sided(0, 6) == pytest.approx(2 / 64)
    assert binom_two_sided(1, 5) == pytest.approx(2 * 6 / 32)
    assert binom_two_sided(3, 6) == 1.0
    assert min_discordant() == 6  # 2 * 0.5**5 = 0.0625 > 0.05
    a = [True] * 4 + [False] * 6
    b = [True] * 10
    assert mcnemar(a, b) == (0, 6, pytest.approx(0.03125))
    assert sign_test([1.0, 2.0, -1.0, 0.0]) == pytest.approx(binom_two_sided(2, 3))


def test_binary_small_n_says_too_few() -> None:
    p = compare([1, 1, 0, 0], [1, 1, 1, 1])
    assert p.test == "mcnemar" and p.b_only == 2 and not p.conclusive and not p.significant
    assert "too few to conclude" in p.note


def test_binary_enough_discordant_pairs() -> None:
    p = compare([0.0] * 8 + [1.0] * 2, [1.0] * 10)
    assert p.conclusive and p.significant and p.p_value == pytest.approx(2 / 256)
    assert "significantly better" in p.note
    worse = compare([1.0] * 10, [0.0] * 8 + [1.0] * 2)
    assert "significantly worse" in worse.note
    lower_better = compare([1.0] * 10, [0.0] * 8 + [1.0] * 2, higher_is_better=False)
    assert "significantly better" in lower_better.note


def test_no_change() -> None:
    assert "no item changed" in compare([1, 0, 1], [1, 0, 1]).note
    assert compare([None, None], [1, 1]).n == 0


def test_continuous_bootstrap_is_seeded_and_notes_small_n() -> None:
    a = [0.1, 0.2, 0.3, 0.4, 0.5]
    b = [0.3, 0.4, 0.5, 0.6, 0.7]
    small = compare(a, b)
    assert small.test == "bootstrap" and "too small to conclude" in small.note and not small.conclusive
    a12 = [0.1 * (i % 5) for i in range(12)]
    b12 = [x + 0.2 + 0.01 * (i % 3) for i, x in enumerate(a12)]
    big = compare(a12, b12, seed=1)
    assert big.conclusive and big.significant and big.ci_low is not None and big.ci_low > 0
    assert compare(a12, b12, seed=1) == big  # same seed, same interval
    lo, hi, _ = paired_bootstrap([0.5, -0.5] * 10, seed=3)
    assert lo < 0 < hi
