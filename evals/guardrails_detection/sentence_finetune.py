"""Fine-tune MiniLM as a sentence classifier and score held-out sentences: the GPU half of the
``sentence_stage`` experiment. Standalone on purpose (torch + transformers only, none of this
project's packages), so it runs on a lent GPU machine from the folder ``sentence_stage prepare``
writes:

    python sentence_finetune.py DIR [--epochs 3]     # writes DIR/scores.json (or $OUT/scores.json)

One model per train fold k (trained on the other folds' sentences, scoring the top sentences of fold
k's documents, so they are out of fold) and one on all of train (scoring dev's). Labels: 1 for the
sentence of a planted request or instruction, 0 for document text (see ``sentence_stage``). A CPU
works too, about 100x slower (hours on 2 cores; ~4 minutes on one H100).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

BATCH, LR, MAX_LEN = 64, 5e-5, 64


def _batches(items: list[Any], size: int, shuffle: bool) -> Iterator[list[Any]]:
    order = list(range(len(items)))
    if shuffle:
        random.shuffle(order)
    for i in range(0, len(order), size):
        yield [items[j] for j in order[i : i + size]]


def fit(model_dir: Path, rows: list[dict[str, Any]], epochs: int, device: torch.device, layers: int | None) -> Any:
    tok = AutoTokenizer.from_pretrained(model_dir)
    extra = {"num_hidden_layers": layers} if layers else {}  # the first N of MiniLM's 6 layers
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32,
                                                               **extra).to(device)
    positives = sum(r["y"] for r in rows)
    pos_weight = torch.tensor((len(rows) - positives) / max(positives, 1), device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    steps = epochs * ((len(rows) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(epochs):
        for batch in _batches(rows, BATCH, True):
            enc = tok([r["t"] for r in batch], padding=True, truncation=True, max_length=MAX_LEN,
                      return_tensors="pt").to(device)
            y = torch.tensor([float(r["y"]) for r in batch], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logit = model(**enc).logits.squeeze(-1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit.float(), y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return tok, model.eval()


@torch.no_grad()
def predict(tok: Any, model: Any, texts: list[str], device: torch.device) -> list[float]:
    out: list[float] = []
    for batch in _batches(texts, 256, False):
        enc = tok(batch, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt").to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out += model(**enc).logits.squeeze(-1).float().tolist()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--layers", type=int, default=None, help="keep only the first N transformer layers")
    args = parser.parse_args()
    random.seed(0)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train = [json.loads(line) for line in (args.dir / "train.jsonl").read_text().splitlines()]
    score = [json.loads(line) for line in (args.dir / "score.jsonl").read_text().splitlines()]
    t0 = time.time()
    result: dict[str, float] = {}
    for fold in sorted({r["f"] for r in score}, key=lambda f: (f < 0, f)):  # -1: trained on all of train
        rows = [r for r in train if r["f"] != fold] if fold >= 0 else train
        todo = [r for r in score if r["f"] == fold]
        tok, model = fit(args.dir / "model", rows, args.epochs, device, args.layers)
        for r, s in zip(todo, predict(tok, model, [r["t"] for r in todo], device), strict=True):
            result[r["key"]] = s
        print(f"fold {fold}: trained on {len(rows)} sentences, scored {len(todo)} ({time.time() - t0:.0f}s, {device})",
              flush=True)
        out = Path(os.environ.get("OUT") or args.dir) / "scores.json"
        out.write_text(json.dumps(result))  # after every fold: a run cut short keeps what it scored
    print(f"wrote {out}: {len(result)} scores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
