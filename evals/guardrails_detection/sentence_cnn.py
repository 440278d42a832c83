"""The CPU control of the ``sentence_stage`` experiment: a small CNN over the static word-piece vectors
(``guardrails.injection.wordvec``) in place of fine-tuned MiniLM, trained and scored the same way
(one model per train fold, one on all of train).

    python -m evals.guardrails_detection.sentence_cnn DIR      # DIR from `sentence_stage prepare`; ~3 min
    python -m evals.guardrails_detection.sentence_stage evaluate DIR --scores DIR/cnn_scores.json

Result (2026-11-27): no gain over v4's trees (pooled macro-TPR 86.5% against 86.8%), where MiniLM
fine-tuned gave 91.5%: what the transformer adds is context, not word similarity.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

MAX_WORDS = 48
EPOCHS, BATCH, LR = 5, 256, 2e-3


class SentenceCNN(torch.nn.Module):
    def __init__(self, dims: int, filters: int = 128) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList([torch.nn.Conv1d(dims, filters, k, padding=k // 2) for k in (1, 2, 3)])
        self.drop = torch.nn.Dropout(0.2)
        self.out = torch.nn.Linear(3 * filters, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        pooled = []
        for conv in self.convs:
            y = torch.relu(conv(x))[:, :, : mask.shape[1]]
            pooled.append(y.masked_fill(mask[:, None, :] == 0, -1e4).max(dim=2).values)
        return self.out(self.drop(torch.cat(pooled, 1))).squeeze(-1)


def main(argv: list[str] | None = None) -> int:
    from guardrails.injection.wordvec import _WORD, WordVectors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    random.seed(0)
    wv = WordVectors.load()
    train = [json.loads(line) for line in (args.dir / "train.jsonl").read_text().splitlines()]
    score = [json.loads(line) for line in (args.dir / "score.jsonl").read_text().splitlines()]
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def encode(text: str) -> tuple[np.ndarray, np.ndarray]:
        if text not in cache:
            x = np.zeros((MAX_WORDS, wv.dims), np.float32)
            mask = np.zeros(MAX_WORDS, np.float32)
            for i, word in enumerate(_WORD.findall(text)[:MAX_WORDS]):
                vec = wv._word(word)
                if vec is not None:
                    x[i] = vec
                mask[i] = 1.0
            cache[text] = (x, mask)
        return cache[text]

    def tensors(rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, masks = zip(*(encode(r["t"]) for r in rows), strict=True)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(masks))

    t0 = time.time()
    result: dict[str, float] = {}
    for fold in (0, 1, 2, 3, -1):
        rows = [r for r in train if r["f"] != fold] if fold >= 0 else train
        x, mask = tensors(rows)
        y = torch.tensor([float(r["y"]) for r in rows])
        pos_weight = (len(y) - y.sum()) / y.sum()
        model = SentenceCNN(wv.dims)
        opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-5)
        for _ in range(EPOCHS):
            model.train()
            for b in torch.randperm(len(y)).split(BATCH):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[b], mask[b]), y[b],
                                                                            pos_weight=pos_weight)
                opt.zero_grad()
                loss.backward()
                opt.step()
        todo = [r for r in score if r["f"] == fold]
        with torch.no_grad():
            result |= dict(zip([r["key"] for r in todo], model.eval()(*tensors(todo)).tolist(), strict=True))
        print(f"fold {fold}: {len(rows)} sentences, scored {len(todo)} ({time.time() - t0:.0f}s)", flush=True)
    (args.dir / "cnn_scores.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
