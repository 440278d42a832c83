"""Experiment: a fine-tuned MiniLM sentence score as an input of document mode's rescoring trees.

v4's document mode ranks a document's sentences with a linear model and rescores the document with
trees over a summary of those scores (``guardrails.injection.rescore``). Here the top 3 sentences
of each document also get the score of MiniLM fine-tuned as a sentence classifier (a request
addressed to the assistant vs document text), and the trees see it too. This experiment chose
detector v5's last stage (LoRA rank 16, gated to the top 10% of benign documents); it compares
variants of the GPU run (``--tag``) on the same first-stage records.

    python -m evals.guardrails_detection.sentence_stage prepare DIR   # ~4 min: the training folder + records
    python DIR/sentence_train.py DIR --tag T [--rank R --lr LR]       # the GPU half (~6 min on an H100)
    python -m evals.guardrails_detection.sentence_stage evaluate DIR --scores DIR/scores_T.json

Everything is train out of fold (4 group folds, the calibration's) or dev; test is not read.
Result (2026-11-27, BENCHMARKS.md): see ``evaluate``'s table there.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ATTACKS = ("bipia_text", "bipia_code", "planted_requests", "self_authored_planted")
TOP = 3
MAX_FPR = 0.02


def prepare(out: Path) -> None:
    from guardrails.injection import evaluation as ev
    from guardrails.injection import train as tr
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.sentence_data import write_folder

    data = build_dataset(DEFAULT_SEED)
    train = [ex for ex in data if ex.split == "train"]
    dev = [ex for ex in data if ex.split == "dev"]
    shipped = InjectionDetector.load()
    write_folder(out, train, dev, shipped._bounded)
    # First-stage records: train scored by fold models (v4's candidate, no trees), dev by the shipped one.
    meta = json.loads((Path(tr.ARTIFACT_DIR) / f"{tr.VERSION}.metrics.json").read_text())
    cand = replace(tr.Candidate(**meta["chosen"]), doc_offset=0.0, doc_prompt_offset=0.0)
    cfg = tr.feature_config()
    folds = [tr._fold(ex.group) for ex in train]
    dets = [tr._roundtrip(tr.fit([ex for ex, f in zip(train, folds, strict=True) if f != k], cfg, cand, DEFAULT_SEED),
                          out / f".fold{k}.npz") for k in range(tr.CV_FOLDS)]
    records = [_record(dets[f], ex, "train", f) for ex, f in zip(train, folds, strict=True) if ev.is_document(ex)]
    shipped.doc_trees = None  # the sentence model's logits; v4 keeps its offset in the trees
    records += [_record(shipped, ex, "dev", -1) for ex in dev if ev.is_document(ex)]
    records = [r for r in records if r is not None]
    for k in range(tr.CV_FOLDS):
        (out / f".fold{k}.npz").unlink(missing_ok=True)
    np.save(out / "records.npy", np.asarray(records, dtype=object), allow_pickle=True)
    print(f"wrote {out}: {len(records)} documents")


def _record(det: Any, ex: Any, part: str, fold: int) -> dict[str, Any] | None:
    from guardrails.injection.document import context_columns, document_matrix

    matrix = document_matrix(det._bounded(ex.text), det.features, det.wordvec)
    if not matrix.spans:
        return None
    seg = matrix.logits(det.doc_weights, det.doc_bias)
    dense = matrix.dense(context_columns(det.features, det.wordvec.dims if det.wordvec else 0))
    top = [matrix.norm[slice(*matrix.spans[j])] for j in np.argsort(-seg, kind="stable")[:TOP]]
    return {"part": part, "fold": fold, "source": ex.source, "label": ex.label, "group": ex.group,
            "seg": seg, "dense": dense, "prompt": max(det.segment_logits(ex.text)), "top": top}


def _tprs(recs: list[dict[str, Any]], score: np.ndarray) -> dict[str, float]:
    """TPR per attack source at the cut keeping long benign documents at <= 2% (document mode only)."""
    from guardrails.injection.evaluation import LONG_BENIGN

    benign = np.sort(np.asarray([s for r, s in zip(recs, score, strict=True)
                                 if r["label"] == 0 and r["source"] in LONG_BENIGN]))[::-1]
    cut = benign[int(MAX_FPR * len(benign))]
    out = {a: float(np.mean([s > cut for r, s in zip(recs, score, strict=True) if r["source"] == a])) for a in ATTACKS}
    out["macro"] = float(np.mean([out[a] for a in ATTACKS]))
    return out


def evaluate(folder: Path, scores_file: Path) -> dict[str, dict[str, dict[str, float]]]:
    from guardrails.injection.rescore import fit_trees, summary
    from guardrails.injection.train_document import balanced_weights

    recs = list(np.load(folder / "records.npy", allow_pickle=True))
    tx = json.loads(scores_file.read_text())
    variants = {
        "v4 trees": lambda r: summary(r["seg"], r["dense"], r["prompt"]),
        "v4 trees + sentence score (top, max of top 3)": lambda r: np.concatenate([
            summary(r["seg"], r["dense"], r["prompt"]), [_tx(tx, r, 0), max(_tx(tx, r, k) for k in range(TOP))]]),
    }
    train = [r for r in recs if r["part"] == "train"]
    dev = [r for r in recs if r["part"] == "dev"]
    y = np.asarray([r["label"] for r in train])
    w = balanced_weights([r["source"] for r in train], y)
    folds = np.asarray([r["fold"] for r in train])
    result: dict[str, dict[str, dict[str, float]]] = {}
    pooled: list[np.ndarray] = []
    for name, feats in variants.items():
        x = np.stack([feats(r) for r in train])
        oof = np.zeros(len(train))
        for k in range(4):
            trees = fit_trees(x[folds != k], y[folds != k], w[folds != k])
            oof[folds == k] = [trees.decision(row) for row in x[folds == k]]
        trees = fit_trees(x, y, w)
        dev_scores = np.asarray([trees.decision(feats(r)) for r in dev])
        pooled.append(np.concatenate([oof, dev_scores]))
        result[name] = {"train out of fold": _tprs(train, oof), "dev": _tprs(dev, dev_scores),
                        "pooled": _tprs(train + dev, pooled[-1])}
    result |= _gated(train + dev, *pooled)
    raw = np.asarray([max(_tx(tx, r, k) for k in range(TOP)) for r in dev])
    result["sentence score alone (max of top 3)"] = {"dev": _tprs(dev, raw)}
    return result


def _gated(recs: list[dict[str, Any]], first: np.ndarray, deep: np.ndarray) -> dict[str, dict[str, dict[str, float]]]:
    """The sentence model run only on documents whose v4 score is in the top ``share`` of benign
    documents' (the rest pass): how much of the gain survives, for a share of the CPU cost."""
    from guardrails.injection.evaluation import LONG_BENIGN

    benign = np.asarray([r["label"] == 0 and r["source"] in LONG_BENIGN for r in recs])
    out = {}
    for share in (0.2, 0.1, 0.05):
        gate = np.quantile(first[benign], 1 - share)
        out[f"gated: sentence model on the top {share:.0%} of benign documents"] = {
            "pooled": _tprs(recs, np.where(first >= gate, deep, -np.inf))}
    return out


def _tx(tx: dict[str, float], r: dict[str, Any], rank: int) -> float:
    from guardrails.injection.sentence_data import sentence_key

    if rank >= len(r["top"]):
        return -10.0  # documents with fewer than 3 sentences
    return tx[sentence_key(r["fold"], r["top"][rank])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("prepare", "evaluate"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--scores", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.dir)
        return 0
    result = evaluate(args.dir, args.scores or args.dir / "scores.json")
    for name, parts in result.items():
        for part, row in parts.items():
            print(f"{name:<48} {part:<18} " + "  ".join(f"{k} {100 * v:5.1f}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
