"""Paired significance for small samples: exact McNemar (pass/fail items), sign test and a seeded
paired bootstrap (continuous scores), each with a plain-words note that says when n is too small.

Both sides must be scored on the same items; pairs where either side is missing are dropped.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import asdict, dataclass
from typing import Any

ALPHA = 0.05
MIN_CONTINUOUS_N = 10


def binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial test of k successes in n at p = 0.5."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def min_discordant(alpha: float = ALPHA) -> int:
    """The fewest discordant pairs with which McNemar can reach `alpha` at all (6 at 5%)."""
    n = 1
    while 2 * 0.5**n > alpha:
        n += 1
    return n


@dataclass(frozen=True)
class Paired:
    n: int
    mean_a: float | None
    mean_b: float | None
    delta: float | None  # b - a
    test: str
    p_value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    a_only: int = 0  # binary: items A passed and B failed
    b_only: int = 0
    significant: bool = False
    conclusive: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pairs(a: list[float | None], b: list[float | None]) -> list[tuple[float, float]]:
    return [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]


def is_binary(values: list[float | None]) -> bool:
    return all(v in (0.0, 1.0) for v in values if v is not None)


def mcnemar(a: list[bool], b: list[bool]) -> tuple[int, int, float]:
    a_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    b_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    return a_only, b_only, binom_two_sided(b_only, a_only + b_only)


def sign_test(deltas: list[float]) -> float:
    pos = sum(1 for d in deltas if d > 0)
    neg = sum(1 for d in deltas if d < 0)
    return binom_two_sided(pos, pos + neg)


def paired_bootstrap(deltas: list[float], seed: int = 0, resamples: int = 2000) -> tuple[float, float, float]:
    """95% percentile interval of the mean difference, and a two-sided bootstrap p-value."""
    rng = random.Random(seed)
    n = len(deltas)
    means = sorted(statistics.fmean(rng.choices(deltas, k=n)) for _ in range(resamples))
    lo = means[int(0.025 * resamples)]
    hi = means[min(resamples - 1, int(0.975 * resamples))]
    below = sum(1 for m in means if m <= 0) / resamples
    above = sum(1 for m in means if m >= 0) / resamples
    return lo, hi, min(1.0, 2 * min(below, above))


def compare(a: list[float | None], b: list[float | None], *, binary: bool | None = None, pass_mark: float = 0.5,
            seed: int = 0, higher_is_better: bool = True) -> Paired:
    """Paired comparison of B against A on the same items."""
    pairs = _pairs(a, b)
    n = len(pairs)
    if n == 0:
        return Paired(0, None, None, None, "none", None, note="no item was scored on both sides")
    mean_a = statistics.fmean(x for x, _ in pairs)
    mean_b = statistics.fmean(y for _, y in pairs)
    delta = mean_b - mean_a
    better = "better" if (delta > 0) == higher_is_better else "worse"
    if binary if binary is not None else is_binary([v for p in pairs for v in p]):
        pa = [x >= pass_mark for x, _ in pairs]
        pb = [y >= pass_mark for _, y in pairs]
        a_only, b_only, p = mcnemar(pa, pb)
        disc = a_only + b_only
        need = min_discordant()
        if disc == 0:
            note, conclusive = f"n={n}: no item changed outcome", False
        elif disc < need:
            note = (f"n={n}: only {disc} item(s) changed outcome ({b_only} now pass, {a_only} now fail); "
                    f"McNemar needs at least {need} to reach p<{ALPHA:g}: too few to conclude")
            conclusive = False
        else:
            conclusive = True
            verdict = f"significantly {better}" if p < ALPHA else "no significant difference"
            note = f"n={n}: {verdict} (exact McNemar p={p:.3g}; {b_only} now pass, {a_only} now fail)"
        return Paired(n, mean_a, mean_b, delta, "mcnemar", p, a_only=a_only, b_only=b_only,
                      significant=conclusive and p < ALPHA, conclusive=conclusive, note=note)
    deltas = [y - x for x, y in pairs]
    if all(d == 0 for d in deltas):
        return Paired(n, mean_a, mean_b, 0.0, "bootstrap", 1.0, 0.0, 0.0,
                      note=f"n={n}: identical scores on every item")
    lo, hi, p_boot = paired_bootstrap(deltas, seed)
    p_sign = sign_test(deltas)
    if n < MIN_CONTINUOUS_N:
        note = (f"n={n} is too small to conclude (want at least {MIN_CONTINUOUS_N} paired items); "
                f"mean difference {delta:+.3g}, bootstrap 95% CI [{lo:+.3g}, {hi:+.3g}], sign test p={p_sign:.3g}")
        return Paired(n, mean_a, mean_b, delta, "bootstrap", p_boot, lo, hi, note=note)
    significant = lo > 0 or hi < 0
    verdict = f"significantly {better}" if significant else "no significant difference"
    note = (f"n={n}: {verdict} (mean difference {delta:+.3g}, paired bootstrap 95% CI [{lo:+.3g}, {hi:+.3g}], "
            f"sign test p={p_sign:.3g})")
    return Paired(n, mean_a, mean_b, delta, "bootstrap", p_boot, lo, hi, significant=significant,
                  conclusive=True, note=note)
