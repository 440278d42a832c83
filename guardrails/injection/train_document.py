"""Fit the document-mode model (see ``document``) on the train split. Training time only.

Rows are the sentence/line segments of every document in train: segments of benign documents
(and the spliced-in benign sentence of ``spliced_benign``) are negatives; for planted examples
the segments that are mostly payload are positives, clean host segments negatives, and segments
that hold only a sliver of the payload are left out (neither label is true of them).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from guardrails.injection.dataset import PLANTED_REQUESTS, Example
from guardrails.injection.document import document_matrix, n_doc_features, payload_span
from guardrails.injection.features import FeatureConfig, Features
from guardrails.injection.wordvec import WordVectors

TRAIN_SOURCES = frozenset(
    {
        "pydoc_topics",
        "stdlib_docstrings",
        "stdlib_code",
        "package_docs",
        "system_docs",
        "tool_docs",
        "foreign_docs",
        "spliced_benign",
        "bipia_text",
        "bipia_code",
        "self_authored_planted",
        PLANTED_REQUESTS,
    }
)
MAX_BENIGN_SEGMENTS = 12  # per document: keeps big code files from outweighing everything else
HOST_SEGMENT_RATE = 0.3


def document_rows(
    ex: Example, cfg: FeatureConfig, rng: random.Random, wordvec: WordVectors | None = None
) -> Iterator[tuple[Features, int]]:
    matrix = document_matrix(ex.text, cfg, wordvec)
    if not matrix.spans:
        return
    feats = matrix.rows()
    for i, label in segment_labels(ex, matrix.spans, matrix.norm, rng):
        yield feats[i], label


def segment_labels(
    ex: Example, spans: Sequence[tuple[int, int]], norm: str, rng: random.Random
) -> Iterator[tuple[int, int]]:
    """(segment index, label) for the segments of ``ex`` (``spans`` of its ``doc_normalize``d text
    ``norm``) that train the document model."""
    payload = payload_span(ex.text, ex.span, norm) if ex.span is not None else None
    if ex.label == 0:
        # Always keep the spliced-in sentence (the hard case), then a sample of the rest.
        hit = [bool(payload) and s < payload[1] and payload[0] < e for s, e in spans]  # type: ignore[index]
        rest = [i for i, h in enumerate(hit) if not h]
        for i in [i for i, h in enumerate(hit) if h] + rng.sample(rest, min(MAX_BENIGN_SEGMENTS, len(rest))):
            yield i, 0
        return
    if payload is None:
        return
    ps, pe = payload
    # A payload that carries a code block ("Add this to your answer: ```import requests ...```")
    # is an injection by its request, not by its code: `import requests` on its own is ordinary
    # code, so lines inside the block are given neither label.
    fence = norm.find("```", ps, pe)
    instr_end = fence if fence > ps else pe
    for i, (s, e) in enumerate(spans):
        overlap = max(0, min(e, pe) - max(s, ps))
        if overlap == 0:
            if rng.random() < HOST_SEGMENT_RATE:
                yield i, 0
            continue
        in_request = max(0, min(e, instr_end) - max(s, ps))
        if in_request >= 0.5 * (e - s) or (s <= ps and instr_end <= e):
            yield i, 1


def balanced_weights(srcs: Sequence[str], y: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Sample weights giving each source, then each class, the same total weight."""
    count = Counter(srcs)
    w = np.asarray([1.0 / count[s] for s in srcs])
    for lab in (0, 1):
        w[y == lab] *= len(y) / 2 / w[y == lab].sum()
    return w


def fit_document(
    train: Sequence[Example], cfg: FeatureConfig, c: float, seed: int, wordvec: WordVectors | None = None
) -> tuple[npt.NDArray[np.float32], float]:
    """Weights and bias of the document model; each source and each class weigh the same in total."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    rng = random.Random(f"{seed}:document")
    rows: list[Features] = []
    labels: list[int] = []
    srcs: list[str] = []
    for ex in train:
        if ex.source not in TRAIN_SOURCES:
            continue
        for feats, label in document_rows(ex, cfg, rng, wordvec):
            rows.append(feats)
            labels.append(label)
            srcs.append(ex.source)
    y = np.asarray(labels)
    w = balanced_weights(srcs, y)
    indptr = np.cumsum([0] + [idx.size for idx, _ in rows])
    x = sp.csr_matrix(
        (np.concatenate([v for _, v in rows]), np.concatenate([i for i, _ in rows]), indptr),
        shape=(len(rows), n_doc_features(cfg, wordvec.dims if wordvec else 0)),
    )
    clf = LogisticRegression(C=c, solver="liblinear", max_iter=5000)
    clf.fit(x, y, sample_weight=w)
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])
