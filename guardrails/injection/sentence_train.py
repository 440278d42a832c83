"""Fine-tune the local MiniLM as a sentence classifier (a request addressed to the assistant vs
document text): the GPU half of the detector's sentence stage. Standalone on purpose (torch and
transformers only, none of this project's packages), so it runs on a GPU machine from the folder
``python -m guardrails.injection.sentence_data DIR`` writes:

    python sentence_train.py DIR [--rank 16] [--tag lora16]   # writes scores_TAG.json, adapter_TAG.safetensors

With ``--rank R`` (the default) only low-rank adapters on every linear layer of the encoder, the
pooler, the classifier and the layer norms are trained, so what ships is ~1.6 MB next to the
MiniLM that setup already downloads; ``--rank 0`` fine-tunes every weight (the reference).

One model per train fold k (trained on the other folds' sentences) scores every sentence of fold
k's documents, so those scores are out of fold; one model on all of train scores dev's and is the
one that ships (``adapter_TAG.safetensors``). Results go to ``$OUT`` when it is set, else ``DIR``,
after every fold. A CPU works too, ~100x slower (hours on 2 cores; minutes on one H100).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer

BATCH, MAX_LEN = 64, 64


class LoRALinear(nn.Module):
    """``base(x) + scale * x A^T B^T`` with ``base`` frozen; B starts at zero, so training starts
    from MiniLM itself."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.base.bias.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale


def build(model_dir: Path, rank: int, device: torch.device) -> Any:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32)
    if rank:
        for p in model.parameters():
            p.requires_grad_(False)
        encoder = model.bert.encoder
        for _, module in list(encoder.named_modules()):
            for child, sub in list(module.named_children()):
                if isinstance(sub, nn.Linear):
                    setattr(module, child, LoRALinear(sub, rank, alpha=2.0 * rank))
        for name, p in model.named_parameters():
            if "lora_" in name or "pooler" in name or "classifier" in name or "LayerNorm" in name:
                p.requires_grad_(True)
    return model.to(device)


def adapter_state(model: Any) -> dict[str, torch.Tensor]:
    """What ships: each adapted linear's merged delta factors and every other trained tensor, named
    as in MiniLM's own checkpoint (``encoder.layer.0.attention.self.query.weight`` ...)."""
    out: dict[str, torch.Tensor] = {}
    for name, module in model.bert.named_modules():
        if isinstance(module, LoRALinear):
            out[f"{name}.weight.lora_b"] = (module.lora_b * module.scale).detach().float().cpu().contiguous()
            out[f"{name}.weight.lora_a"] = module.lora_a.detach().float().cpu().contiguous()
    for name, p in model.named_parameters():
        if p.requires_grad and "lora_" not in name:
            out[name.removeprefix("bert.").replace(".base.", ".")] = p.detach().float().cpu().contiguous()
    return out


def _batches(items: list[Any], size: int, shuffle: bool) -> Iterator[list[Any]]:
    order = list(range(len(items)))
    if shuffle:
        random.shuffle(order)
    for i in range(0, len(order), size):
        yield [items[j] for j in order[i : i + size]]


def fit(
    model_dir: Path, rows: list[dict[str, Any]], epochs: int, rank: int, lr: float, device: torch.device,
    batch: int = BATCH,
) -> Any:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = build(model_dir, rank, device)
    positives = sum(r["y"] for r in rows)
    pos_weight = torch.tensor((len(rows) - positives) / max(positives, 1), device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = epochs * ((len(rows) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(epochs):
        for chunk in _batches(rows, batch, True):
            enc = tok([r["t"] for r in chunk], padding=True, truncation=True, max_length=MAX_LEN,
                      return_tensors="pt").to(device)
            y = torch.tensor([float(r["y"]) for r in chunk], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logit = model(**enc).logits.squeeze(-1)
            loss = nn.functional.binary_cross_entropy_with_logits(logit.float(), y, pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return tok, model.eval()


@torch.no_grad()
def predict(tok: Any, model: Any, texts: list[str], device: torch.device) -> list[float]:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad little
    out = [0.0] * len(texts)
    for idx in _batches(order, 512, False):
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=MAX_LEN,
                  return_tensors="pt").to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for i, s in zip(idx, model(**enc).logits.squeeze(-1).float().tolist(), strict=True):
                out[i] = s
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank; 0 fine-tunes every weight")
    parser.add_argument("--lr", type=float, default=None, help="default 5e-4 with LoRA, 5e-5 without")
    parser.add_argument("--tag", default="sentence")
    parser.add_argument("--seed", type=int, default=0, help="shuffling, dropout and LoRA's initialisation")
    args = parser.parse_args()
    lr = args.lr or (5e-4 if args.rank else 5e-5)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train = [json.loads(line) for line in (args.dir / "train.jsonl").read_text().splitlines()]
    score = [json.loads(line) for line in (args.dir / "score.jsonl").read_text().splitlines()]
    out_dir = Path(os.environ.get("OUT") or args.dir)
    t0 = time.time()
    result: dict[str, float] = {}
    for fold in sorted({r["f"] for r in score}):  # -1 first: the model that ships
        rows = [r for r in train if r["f"] != fold] if fold >= 0 else train
        todo = [r for r in score if r["f"] == fold]
        tok, model = fit(args.dir / "model", rows, args.epochs, args.rank, lr, device)
        for r, s in zip(todo, predict(tok, model, [r["t"] for r in todo], device), strict=True):
            result[r["key"]] = s
        if fold < 0 and args.rank:
            from safetensors.torch import save_file

            meta = {"rank": str(args.rank), "epochs": str(args.epochs), "lr": str(lr), "seed": str(args.seed),
                    "sentences": str(len(rows))}
            save_file(adapter_state(model), out_dir / f"adapter_{args.tag}.safetensors", metadata=meta)
        print(f"[{args.tag}] fold {fold}: trained on {len(rows)} sentences, scored {len(todo)} "
              f"({time.time() - t0:.0f}s, {device})", flush=True)
        (out_dir / f"scores_{args.tag}.json").write_text(json.dumps(result))  # a run cut short keeps what it scored
    print(f"[{args.tag}] wrote {len(result)} scores to {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
