"""Experiment: a MiniLM off-topic cue on top of the injection detector's document mode (dev only).

``python -m evals.guardrails_detection.minilm_offtopic [--limit N]`` (~13 min on the shared 2 cores:
it embeds every sentence of every dev document, ~21.5k of them).

For each sentence of a document: ``centroid`` = cosine to the mean embedding of the *other*
sentences, ``nearest`` = max cosine to any other sentence (a planted request is far from all of
them). The adjusted sentence logit is ``doc_logit - a*(centroid - 0.5) - b*(nearest - 0.5) + offset``;
(a, b, offset) and the threshold are swept on dev under the same <= 2% FPR constraints as
``guardrails.injection.train`` (long documents in document mode, long documents as prompts, short
prompts). ``gate``: MiniLM runs only for documents whose first-stage max logit is >= gate (the rest
keep their v2 score), which is what latency would force at run time. ``top_k``: only the first
stage's k highest sentences are embedded (features among them only).

Not part of the runtime: the result (BENCHMARKS.md, detection section) was that the cue helps on
dev but needs *every* sentence embedded, ~0.3-0.4 s for a 2,000-char document on these cores.
"""

from __future__ import annotations

import argparse
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guardrails.injection import evaluation as ev
from guardrails.injection.metrics import threshold_for_fpr

MAX_FPR = 0.02
GRID_A = (0.0, 2.0, 4.0)
GRID_B = (0.0, 2.0, 6.0)
OFFSETS = tuple(float(x) for x in np.arange(-3.0, 1.01, 0.25))
GATES = (-math.inf, -3.0, -2.0, -1.0)
INDIRECT = ("bipia_text", "bipia_code")


def offtopic_features(emb: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(cosine to the centroid of the other rows, max cosine to another row) for L2-normalised rows;
    NaN where a document has a single sentence (no context to be off-topic from)."""
    n = len(emb)
    if n < 2:
        return np.full(n, np.nan), np.full(n, np.nan)
    e = emb.astype(np.float64)
    others = e.sum(0)[None, :] - e
    others /= np.linalg.norm(others, axis=1, keepdims=True) + 1e-12
    sims = e @ e.T
    np.fill_diagonal(sims, -np.inf)
    return (e * others).sum(1), sims.max(1)


@dataclass
class Row:
    source: str
    label: int
    prompt: float  # max prompt-model logit (+ the artifact's document offset for documents)
    doc: npt.NDArray[np.float64]  # per-sentence document-model logits (empty: not a document)
    centroid: npt.NDArray[np.float64]
    nearest: npt.NDArray[np.float64]


def doc_logit(r: Row, a: float, b: float, offset: float, gate: float) -> float:
    if r.doc.size == 0:
        return -math.inf
    first = float(r.doc.max())
    if first < gate:
        return first
    c, m = np.nan_to_num(r.centroid, nan=0.5), np.nan_to_num(r.nearest, nan=0.5)
    return float((r.doc - a * (c - 0.5) - b * (m - 0.5)).max()) + offset


def evaluate(rows: Sequence[Row], prompt_long: Sequence[float], a: float, b: float, offset: float,
             gate: float) -> dict[str, float]:
    """Macro-TPR, indirect and planted-request TPR, and the share of benign documents that ran MiniLM."""
    from guardrails.injection.detector import sigmoid

    scores = np.asarray([sigmoid(max(r.prompt, doc_logit(r, a, b, offset, gate))) for r in rows])
    src = np.asarray([r.source for r in rows])
    benign = np.asarray([r.label == 0 for r in rows])
    long_, short = benign & np.isin(src, ev.LONG_BENIGN), benign & np.isin(src, ev.SHORT_BENIGN)
    thr = max(threshold_for_fpr(scores[long_].tolist(), MAX_FPR), threshold_for_fpr(scores[short].tolist(), MAX_FPR),
              threshold_for_fpr(list(prompt_long), MAX_FPR))
    positives = sorted({r.source for r in rows if r.label == 1})
    gated = np.asarray([r.doc.size > 0 and float(r.doc.max()) >= gate for r in rows])
    return {
        "macro_tpr": float(np.mean([(scores[src == s] >= thr).mean() for s in positives])),
        "indirect_tpr": float((scores[np.isin(src, INDIRECT)] >= thr).mean()),
        "planted_tpr": float((scores[src == "planted_requests"] >= thr).mean()),
        "long_fpr": float((scores[long_] >= thr).mean()),
        "short_fpr": float((scores[short] >= thr).mean()),
        "minilm_share_long_benign": float(gated[long_].mean()),
        "threshold": thr,
    }


def build_rows(limit: int | None, top_k: int | None) -> tuple[list[Row], list[float]]:
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.document import document_matrix
    from rag.embedder import MiniLMEmbedder

    det = InjectionDetector.load()
    dev = [ex for ex in build_dataset(DEFAULT_SEED) if ex.split == "dev"]
    if limit is not None:  # a seeded sample, so a smoke run still sees every source
        dev = random.Random(DEFAULT_SEED).sample(dev, min(limit, len(dev)))
    embedder = MiniLMEmbedder()
    rows: list[Row] = []
    for ex in dev:
        empty = np.zeros(0)
        if not ev.is_document(ex) or not ex.text.strip():
            prompt = max(det.segment_logits(ex.text)) if ex.text.strip() else -math.inf
            rows.append(Row(ex.source, ex.label, prompt, empty, empty, empty))
            continue
        m = document_matrix(ex.text, det.features, det.wordvec)
        logits = m.logits(det.doc_weights, det.doc_bias) if det.doc_weights is not None else empty
        keep = np.argsort(-logits)[:top_k] if top_k else np.arange(len(logits))
        centroid, nearest = offtopic_features(embedder.embed([m.norm[s:e] for s, e in (m.spans[i] for i in keep)]))
        rows.append(Row(ex.source, ex.label, det.logit_parts(ex.text)[0] + det.doc_prompt_offset,
                        logits[keep], centroid, nearest))
    prompt_long = [det.score(ex.text) for ex in ev.long_as_prompt(dev)]
    return rows, prompt_long


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="a sample of N dev examples (smoke run)")
    parser.add_argument("--top-k", type=int, default=None, help="embed only the k highest first-stage sentences")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    rows, prompt_long = build_rows(args.limit, args.top_k)
    base = evaluate(rows, prompt_long, 0.0, 0.0, 0.0, math.inf)
    print("v2 (no MiniLM):", {k: round(v, 4) for k, v in base.items()})
    for gate in GATES:
        for a in GRID_A:
            for b in GRID_B:
                best = max((evaluate(rows, prompt_long, a, b, o, gate) | {"offset": o} for o in OFFSETS),
                           key=lambda r: r["macro_tpr"])
                print(f"gate={gate} a={a} b={b}:", {k: round(v, 4) for k, v in best.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
