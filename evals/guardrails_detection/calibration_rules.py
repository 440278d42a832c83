"""Experiment: how document mode's false-positive budget is shared among the long benign families.

v3-v5 kept long documents at <= 2% *pooled* over the families (package docs, system docs, stdlib
code, ...); v6 keeps each family at <= 2% on its own (``train.sweep``). This runs the detector's
training (``guardrails.injection.train``, ~10 min, writing to ``--out``), keeps the inputs of its last
calibration sweep (train scored out of fold + dev, the last stage's logits), and compares budget rules
on them: the macro-TPR the calibration maximises, and per family / per attack source rates.

    python -m evals.guardrails_detection.calibration_rules --out DIR

Train out of fold and dev only; the test split is not read here (the training run itself scores it
and writes it to DIR's metrics file, which this does not open).
Result (2026-11-27, v6's data): ``benchmarks/results/calibration_rules.txt``; BENCHMARKS.md, "v6".
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from guardrails.injection import evaluation as ev
from guardrails.injection import train as tr
from guardrails.injection.dataset import Example

ATTACKS = ("bipia_text", "bipia_code", "planted_requests", "self_authored_planted")
OFFSETS = np.arange(-6.0, 6.0, 0.01)


def capture_last_sweep(argv: Sequence[str]) -> tuple[np.ndarray, list[Example], float]:
    """Run the training; return (logits, pool, threshold) of its last calibration sweep."""
    seen: list[tuple[np.ndarray, list[Example], float]] = []
    original = tr.sweep

    def keeping(parts: np.ndarray, pool: Sequence[Example], has_doc: bool, threshold: float | None = None) -> Any:
        result = original(parts, pool, has_doc, threshold)
        seen.append((np.array(parts, copy=True), list(pool), result[3]))
        return result

    tr.sweep = keeping  # type: ignore[assignment]
    try:
        tr.main(argv)
    finally:
        tr.sweep = original  # type: ignore[assignment]
    return seen[-1]


class Pool:
    def __init__(self, parts: np.ndarray, pool: list[Example], threshold: float) -> None:
        self.parts, self.pool = parts, pool
        self.source = np.asarray([ex.source for ex in pool])
        self.split = np.asarray([ex.split for ex in pool])
        self.is_doc = np.asarray([ev.is_document(ex) for ex in pool])
        self.long = self.is_doc & np.asarray([ex.label == 0 for ex in pool]) & np.isin(self.source, ev.LONG_BENIGN)
        self.families = [f for f in ev.LONG_BENIGN if (self.long & (self.source == f)).any()]
        self.cut = math.log(threshold / (1.0 - threshold))

    def flagged(self, offset: float, prompt_offset: float) -> np.ndarray:
        logit = np.maximum(self.parts[:, 0] + prompt_offset, self.parts[:, 1] + offset)
        return np.where(self.is_doc, logit, self.parts[:, 0]) >= self.cut

    def within(self, flags: np.ndarray, members: np.ndarray, share: float) -> bool:
        return int(flags[members].sum()) <= math.floor(share * int(members.sum()))

    def best(self, rule: Callable[[np.ndarray], bool]) -> tuple[float, float, float]:
        """(macro-TPR, offset, prompt offset) as ``train.sweep`` chooses them, by search: per prompt
        offset the highest document offset the rule allows (catch rates only rise with it), then the
        first prompt offset with the best macro-TPR."""
        found = (-1.0, 0.0, 0.0)
        for prompt_offset in tr.DOC_PROMPT_OFFSETS:
            allowed = [float(o) for o in OFFSETS if rule(self.flagged(float(o), prompt_offset))]
            if not allowed:
                continue
            flags = self.flagged(max(allowed), prompt_offset)
            score = tr.macro_tpr(ev.rates(self.pool, flags.astype(float).tolist(), 0.5))
            if score > found[0] + 1e-9:
                found = (score, max(allowed), prompt_offset)
        return found

    def describe(self, offset: float, prompt_offset: float) -> list[str]:
        flags = self.flagged(offset, prompt_offset)
        lines = []
        for split in ("train", "dev"):
            m = self.split == split
            fpr = " ".join(f"{f}={100 * flags[m & self.long & (self.source == f)].mean():.1f}" for f in self.families)
            tpr = [100 * flags[m & (self.source == a)].mean() for a in ATTACKS]
            lines.append(f"  {split:<5} long FPR {100 * flags[m & self.long].mean():4.1f}% | {fpr}")
            lines.append("        TPR " + " ".join(f"{a}={t:.1f}" for a, t in zip(ATTACKS, tpr, strict=True))
                         + f" macro={np.mean(tpr):.1f}")
        return lines


def rules(p: Pool) -> dict[str, Callable[[np.ndarray], bool]]:
    older = p.long & (p.source != "tool_docs")
    return {
        "pooled <= 2% (v3-v5)": lambda f: p.within(f, p.long, tr.MAX_FPR),
        "pooled <= 2%, families before v6 only": lambda f: p.within(f, older, tr.MAX_FPR),
        "every family <= 2% (v6)": lambda f: all(p.within(f, p.long & (p.source == x), tr.MAX_FPR) for x in p.families),
        "every family <= 3%": lambda f: all(p.within(f, p.long & (p.source == x), 0.03) for x in p.families),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the training run writes (not artifacts/)")
    args = parser.parse_args(argv)
    pool = Pool(*capture_last_sweep(["--out", str(args.out)]))
    print("document mode, train out of fold + dev (macro-TPR: the calibration's objective, pooled over both)")
    for name, rule in rules(pool).items():
        score, offset, prompt_offset = pool.best(rule)
        print(f"{name:<40} macro-TPR {score:.4f}  offset {offset:+.2f}  prompt offset {prompt_offset:+.1f}")
        print("\n".join(pool.describe(offset, prompt_offset)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
