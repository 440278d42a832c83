"""Rates with Wilson intervals and threshold selection, shared by training and evals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Rate:
    """k successes out of n with a 95% Wilson score interval (sane at k=0 and k=n)."""

    k: int
    n: int
    rate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def fmt(self) -> str:
        if self.n == 0:
            return "n/a"
        return f"{100 * self.rate:5.1f}% [{100 * self.low:5.1f}, {100 * self.high:5.1f}] ({self.k}/{self.n})"


def wilson(k: int, n: int, z: float = 1.959964) -> Rate:
    if n == 0:
        return Rate(0, 0, float("nan"), float("nan"), float("nan"))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Rate(k, n, p, max(0.0, centre - half), min(1.0, centre + half))


def threshold_for_fpr(benign_scores: Sequence[float], max_fpr: float) -> float:
    """A threshold t with (#benign scoring >= t) / n <= max_fpr, as low as that allows.

    It sits 1e-6 above the highest score that must be let through (or midway to the next higher
    score if that is closer), not one ulp above: many documents can tie on one score (a line they
    share), and the same score computed in another order (an offset added before or after a sum)
    differs in the last bits.
    """
    ordered = sorted(benign_scores, reverse=True)
    allowed = int(math.floor(max_fpr * len(ordered)))
    if allowed >= len(ordered):
        return 0.0
    cut = ordered[allowed]  # the highest score that must be let through
    higher = [s for s in ordered[:allowed] if s > cut + 1e-9]
    return min(cut + 1e-6, (cut + min(higher)) / 2) if higher else min(1.0, cut + 1e-6)
