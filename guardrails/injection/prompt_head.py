"""Prompt mode's second opinion (v8): a head over what the worst segment is *about*, that may clear.

The first stage's hashed n-grams see the words a jailbreak uses, and benign prompts that instruct
the assistant use many of them ("I want you to act as a travel agent", "what are your limits as an
AI?", "forget the bullet points"). The head reads the segment the first stage scored worst as the
static MiniLM word vectors the document model already loads (``wordvec``: unit sum of its content
words, ~0.1 ms) and may *lower* the first stage's logit, by at most ``CLIP``; it never raises one.
A segment with no known content word (Chinese or Japanese, written without spaces, for one) is left alone.

Why only down (session 9, dev at the shipped threshold): a head that could also raise scores
cleared benign prompts as well, but flagged long benign documents pasted as prompts 19 -> 50 of
1,079 (it learns "addressed to the assistant", which documents are not); trained with those
documents in, it no longer cleared anything. Lowering only: benign prompts flagged 4 -> 1 of 206,
no attack on dev lost, documents unchanged. MiniLM itself in place of the static vectors did no
better on dev and costs ~12 ms per prompt in numpy here (its 90 MB of weights are read once per
forward pass). Document mode does not use the head (its trees were fitted on the first stage alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guardrails.injection.wordvec import WordVectors, unit

CLIP = 3.0  # logits the head may take off; dev: 2 and 3 gave the same result
HEAD_C = 8.0  # dev (session 9): 2 and 8 tried


@dataclass
class PromptHead:
    weights: npt.NDArray[np.float32]  # (wordvec dims,)
    bias: float  # the regression's
    offset: float = 0.0  # calibrated on dev at the detector's threshold (``choose_offset``)

    def terms(self, wv: WordVectors, segments: Sequence[str]) -> npt.NDArray[np.float64]:
        """What the head adds to each segment's first-stage logit: in [-CLIP, 0]."""
        x, known = inputs(wv, segments)
        return np.where(known, np.clip(x @ self.weights.astype(np.float64) + self.bias + self.offset, -CLIP, 0.0), 0.0)

    def term(self, wv: WordVectors, segment: str) -> float:
        return float(self.terms(wv, [segment])[0])


def inputs(wv: WordVectors, segments: Sequence[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Each segment's unit word-vector sum, and whether it had any known content word."""
    sums, counts = wv.sums(list(segments))
    return unit(sums).astype(np.float64), counts > 0


def fit_head(wv: WordVectors, segments: Sequence[str], labels: Sequence[int]) -> PromptHead:
    """Logistic regression on prompts (no documents: see the module's docstring), classes balanced."""
    from sklearn.linear_model import LogisticRegression

    x, _ = inputs(wv, segments)
    clf = LogisticRegression(C=HEAD_C, class_weight="balanced", max_iter=5000)
    clf.fit(x, np.asarray(labels))
    return PromptHead(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


OFFSETS = tuple(np.round(np.arange(-CLIP, CLIP + 1e-9, 0.05), 2).tolist())


def choose_offset(
    first: npt.NDArray[np.float64], terms: Callable[[float], npt.NDArray[np.float64]], labels: Sequence[int],
    groups: Sequence[str], cut: float, budgets: dict[str, int],
) -> float | None:
    """The offset flagging the fewest benign prompts while every attack group (a source, or a family)
    keeps at least the catches the first stage makes alone, and every benign group named in
    ``budgets`` stays within its count; ties go to the higher offset (the head clears less). ``first``:
    the first stage's logits; ``terms(offset)``: the head's term per row at that offset; ``groups``:
    each row's. None when no offset keeps every attack group whole (the highest offsets clear nothing,
    so that means the first stage itself is over budget)."""
    y = np.asarray(labels)
    grp = np.asarray(groups)
    attack_groups = sorted(set(grp[y == 1].tolist()))
    base = {g: int((first[(grp == g) & (y == 1)] >= cut).sum()) for g in attack_groups}
    best: tuple[int, float] | None = None
    for offset in OFFSETS:
        flagged = first + terms(offset) >= cut
        if any(int(flagged[(grp == g) & (y == 1)].sum()) < base[g] for g in attack_groups):
            continue
        if any(int(flagged[(grp == g) & (y == 0)].sum()) > limit for g, limit in budgets.items()):
            continue
        benign = int(flagged[y == 0].sum())
        if best is None or benign <= best[0]:
            best = (benign, float(offset))
    return None if best is None else best[1]
